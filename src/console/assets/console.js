// lagesbild console: what the page scripts share. Plain JavaScript, no build step; every text a
// page shows is set with textContent, never parsed as HTML, and nothing runs inline (the pages'
// Content-Security-Policy allows only these files).
'use strict';

window.Lagesbild = (function () {
  // The grid the policy engine generalises locations to (src/domain/policy.rs, grid_centre): bands
  // of latitude, cut into longitude steps that keep about the cell's side at the band's centre.
  const METRES_PER_DEGREE = 111320;

  /** The bounds [[south, west], [north, east]] of the cell of side `metres` centred on lat, lon. */
  function cellBounds(lat, lon, metres) {
    const latStep = metres / METRES_PER_DEGREE;
    const cos = Math.max(Math.cos(lat * Math.PI / 180), 0.01);
    const lonStep = Math.min(metres / (METRES_PER_DEGREE * cos), 360);
    return [[lat - latStep / 2, lon - lonStep / 2], [lat + latStep / 2, lon + lonStep / 2]];
  }

  /** The map's background: the configured tiles, or none (a plain background), and a scale. */
  function baseLayer(map, tiles) {
    if (tiles && tiles.url) {
      L.tileLayer(tiles.url, { attribution: tiles.attribution || '', maxZoom: 19 }).addTo(map);
    }
    L.control.scale({ imperial: false }).addTo(map);
  }

  /** An element with attributes and children (strings become text nodes). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'class') node.className = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === '') continue;
      node.append(typeof child === 'string' ? document.createTextNode(child) : child);
    }
    return node;
  }

  /** The locale of a console language: Swedish, or English as written in Europe. */
  const locale = (lang) => (lang === 'sv' ? 'sv-SE' : 'en-GB');

  /** A time as precise as it was shared: exact, to the hour, or the day (cut at midnight UTC). */
  function sharedTime(iso, precision, zone, lang) {
    if (!iso) return '';
    const at = new Date(iso);
    if (precision === 'day') {
      return new Intl.DateTimeFormat(locale(lang), { timeZone: 'UTC', weekday: 'long', day: 'numeric', month: 'long' }).format(at);
    }
    const day = new Intl.DateTimeFormat(locale(lang), { timeZone: zone, weekday: 'short', day: 'numeric', month: 'short' }).format(at);
    const hour = (t) => new Intl.DateTimeFormat(locale(lang), { timeZone: zone, hour: '2-digit', hourCycle: 'h23' }).format(t);
    if (precision === 'hour') {
      return `${day} ${hour(at)}–${hour(new Date(at.getTime() + 3600e3))}`;
    }
    const time = new Intl.DateTimeFormat(locale(lang), { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(at);
    return `${day} ${time}`;
  }

  /** Calls `fn` once calls have stopped for `ms`. */
  function debounce(fn, ms) {
    let timer = null;
    return (...args) => {
      clearTimeout(timer);
      timer = setTimeout(() => fn(...args), ms);
    };
  }

  return { cellBounds, baseLayer, el, sharedTime, debounce };
})();
