// The filing form: a small map to tap the place on, the device's position, the organisation's
// sites, more person rows, and the per-recipient panel kept up to date as the form changes (the
// server renders it, from the same policy engine as the exchange). Without this script the form
// still files, and its "update the preview" button shows the panel.
'use strict';

(function () {
  const { baseLayer, debounce } = window.Lagesbild;
  const form = document.getElementById('report-form');
  if (!form) return;
  const cfg = JSON.parse(form.dataset.config);
  const field = (name) => form.elements.namedItem(name);
  const lat = field('lat');
  const lon = field('lon');
  const panel = document.getElementById('recipients');

  // The map to tap the place on.
  const pickEl = document.getElementById('pick-map');
  pickEl.removeAttribute('aria-hidden');
  if (cfg.tiles) pickEl.classList.remove('plain');
  const map = L.map(pickEl, { maxZoom: 19, minZoom: 3 });
  baseLayer(map, cfg.tiles);
  let marker = null;

  function place(latitude, longitude, zoom) {
    lat.value = latitude.toFixed(6);
    lon.value = longitude.toFixed(6);
    show(zoom);
    refresh();
  }

  function show(zoom) {
    const at = [Number(lat.value.replace(',', '.')), Number(lon.value.replace(',', '.'))];
    if (!Number.isFinite(at[0]) || !Number.isFinite(at[1]) || lat.value === '' || lon.value === '') return false;
    if (marker) marker.setLatLng(at);
    else marker = L.marker(at, { icon: L.divIcon({ className: 'mk pick', iconSize: [18, 18] }) }).addTo(map);
    map.setView(at, zoom || Math.max(map.getZoom() || 0, 15));
    return true;
  }

  if (!show(15)) {
    const site = cfg.sites[0];
    if (site) map.setView([site.lat, site.lon], 13);
    else map.setView([62.0, 15.0], 5);
  }
  map.on('click', (event) => place(event.latlng.lat, event.latlng.lng));
  for (const input of [lat, lon]) input.addEventListener('change', () => show());

  // The device's position.
  const positionButton = document.getElementById('use-position');
  if (!navigator.geolocation) positionButton.hidden = true;
  positionButton.addEventListener('click', () => {
    navigator.geolocation.getCurrentPosition(
      (position) => place(position.coords.latitude, position.coords.longitude, 17),
      () => { positionButton.after(Object.assign(document.createElement('span'), { className: 'error', textContent: cfg.position_failed })); },
      { enableHighAccuracy: true, timeout: 15000 },
    );
  });

  // One of the organisation's sites fills in the place.
  const siteSelect = field('org_site');
  if (siteSelect) {
    siteSelect.addEventListener('change', () => {
      const site = cfg.sites.find((s) => s.name === siteSelect.value);
      if (!site) return;
      field('site_kind').value = site.kind;
      field('site_name').value = site.name;
      if (site.address) field('address').value = site.address;
      if (site.municipality_code) field('municipality_code').value = site.municipality_code;
      place(site.lat, site.lon, 16);
    });
  }

  // Another person row, copied from the empty one.
  const template = document.getElementById('person-template');
  let added = 0;
  document.getElementById('add-person').addEventListener('click', () => {
    added += 1;
    const row = template.cloneNode(true);
    row.removeAttribute('id');
    for (const control of row.querySelectorAll('input, select')) {
      control.value = '';
      control.id = `${control.id}_${added}`;
    }
    for (const label of row.querySelectorAll('label')) label.htmlFor = `${label.htmlFor}_${added}`;
    template.after(row);
    row.querySelector('select').focus();
  });

  // The per-recipient panel, rendered by the node for what the form says now.
  let asked = 0;
  async function refreshNow() {
    const mine = ++asked;
    const body = new URLSearchParams(new FormData(form));
    const response = await fetch('/console/reports/preview?fragment=1', { method: 'POST', body, credentials: 'same-origin' });
    if (mine !== asked || !response.ok) return;
    panel.innerHTML = await response.text();
    panel.dataset.updated = String(mine);
  }
  const refresh = debounce(() => refreshNow().catch(() => {}), 300);
  form.addEventListener('input', refresh);
  form.addEventListener('change', refresh);
  document.getElementById('preview-button').hidden = true;
  refresh();
})();
