// The console's journey through the four partners of `lagesbild demo`, in Debian's Chromium, as the
// seeds' people would take it (tests/it/console_browser.rs starts the demo and this script):
//
//   node journey.mjs NODES_JSON SCREENSHOT_DIR
//
// A security representative (reporter) at the municipality signs in on a phone, is refused the
// agreements and audit pages, sends a bad form (its error beside the field, nothing stored), files a
// report and sees the per-recipient panel; the police coordinator's open map shows it within two
// seconds without a reload; the shop's map shows only the 500 m square and the day; a retraction
// leaves the police map; an urgent report is an alert on the police's open page until seen, and
// the municipality learns the police has seen it; an agreement is proposed and signed in the browser by each party and comes
// into force; the patrol sheet prints on A4; and axe-core (npm) finds no serious or critical
// accessibility problem on any page. Every step leaves a screenshot. Exits non-zero, saying which step
// failed and why.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const axeSource = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

const [listing, shots] = process.argv.slice(2);
if (!listing || !shots) {
  console.error('usage: node journey.mjs NODES_JSON SCREENSHOT_DIR');
  process.exit(2);
}
const nodes = Object.fromEntries(JSON.parse(fs.readFileSync(listing, 'utf8')).map((n) => [n.org_id, n]));
const municipality = nodes['se-kommun-norrkoping'];
const police = nodes['se-polisen-ost'];
const shop = nodes['se-ica-hageby'];
const guards = nodes['se-vaktbolaget-ost'];
fs.mkdirSync(shots, { recursive: true });

const problems = [];
// Playwright gives the browser a new, empty profile of its own.
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});

/** A browser context as one person's browser: Swedish, desktop or phone (standing at Hagebyskolan). */
async function person(name, { phone = false, options = {} } = {}) {
  const context = await browser.newContext({
    ...(phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'sv-SE',
          geolocation: { latitude: 58.6110, longitude: 16.1510 }, permissions: ['geolocation'] }
      : { viewport: { width: 1366, height: 860 }, locale: 'sv-SE' }),
    ...options,
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => problems.push(`${name}: script error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content.Security.Policy|Refused to/i.test(message.text())) problems.push(`${name}: ${message.text()}`);
  });
  return page;
}

let step = 0;
async function shot(page, name) {
  step += 1;
  await page.screenshot({ path: path.join(shots, `${String(step).padStart(2, '0')}-${name}.png`), fullPage: false });
}

function check(condition, what) {
  if (!condition) throw new Error(what);
}

async function api(node, route) {
  const response = await fetch(`${node.api_url}${route}`, { headers: { Authorization: `Bearer ${node.token}` } });
  check(response.ok, `${route} at ${node.org_id} answered ${response.status}`);
  return response.json();
}

/** Waits until the map has drawn the picture and follows the stream. */
async function mapReady(page) {
  await page.waitForSelector('#map[data-drawn]', { timeout: 15000 });
  await page.waitForSelector('#live.on', { timeout: 15000 });
}

const listText = (page) => page.locator('#list').innerText();
const title = `Klotter på Hagebyskolans gavel ${Date.now()}`;
const witness = 'Sara Lindqvist';

try {
  // The police coordinator has the picture open, as on a night shift.
  const coordinator = await person('police coordinator');
  await coordinator.goto(police.console_url);
  await mapReady(coordinator);
  await shot(coordinator, 'police-picture');

  // A security representative at the municipality signs in on a phone, as a reporter only.
  const reporter = await person('municipality reporter', { phone: true });
  await reporter.goto(`${municipality.api_url}/console/`);
  check(reporter.url().includes('/console/signin'), `an unsigned browser is sent to sign in, not ${reporter.url()}`);
  await reporter.fill('#token', municipality.token);
  for (const role of ['coordinator', 'analyst', 'agreement-admin', 'node-admin']) {
    await reporter.uncheck(`input[name="role"][value="${role}"]`);
  }
  await shot(reporter, 'reporter-signs-in');
  await Promise.all([reporter.waitForURL('**/console/'), reporter.click('button[type="submit"]')]);
  const menu = await reporter.locator('header nav').innerText();
  check(!menu.includes('Överenskommelser') && !menu.includes('Granskningslogg'), `a reporter's menu: ${menu}`);
  for (const route of ['/console/agreements', '/console/audit']) {
    const answer = await reporter.goto(`${municipality.api_url}${route}`);
    check(answer.status() === 403, `${route} answered a reporter ${answer.status()}`);
    const says = await reporter.locator('.problem').innerText();
    check(says.includes('kräver rollen') && says.includes('säkerhetsombud'), `${route} says: ${says}`);
  }
  await shot(reporter, 'reporter-refused-audit');

  // A bad form: its errors beside their fields, and nothing stored.
  const before = (await api(municipality, '/api/v1/situation?source=own&limit=1000')).reports.length;
  await reporter.goto(`${municipality.api_url}/console/reports/new`);
  // The device's position fills in the place.
  await reporter.click('#use-position');
  await reporter.waitForFunction(() => document.getElementById('lat').value !== '', null, { timeout: 5000 });
  check(Math.abs(Number(await reporter.inputValue('#lat')) - 58.611) < 1e-4, 'the position fills in the latitude');
  await reporter.selectOption('#category', 'vandalism');
  await reporter.fill('#lat', '91');
  await reporter.fill('#lon', '16.1510');
  await Promise.all([reporter.waitForLoadState('load'), reporter.click('#report-form button.primary')]);
  await reporter.waitForSelector('#title-error');
  check((await reporter.locator('#title-error').innerText()).length > 0, 'the title has its error beside it');
  check(await reporter.locator('#lat-error').isVisible(), 'the latitude has its error beside it');
  check(await reporter.locator('#lat').getAttribute('aria-invalid') === 'true', 'the latitude is marked invalid');
  await shot(reporter, 'reporter-bad-form');
  const after = (await api(municipality, '/api/v1/situation?source=own&limit=1000')).reports.length;
  check(after === before, `a refused form stored nothing (${before} before, ${after} after)`);

  // The report, filed on the phone: a site of the organisation, a witness, GREEN.
  await reporter.goto(`${municipality.api_url}/console/reports/new`);
  await reporter.selectOption('#category', 'vandalism');
  await reporter.selectOption('#severity', 'moderate');
  await reporter.fill('#title', title);
  await reporter.fill('#description', 'Klotter över hela gaveln mot skolgården.');
  await reporter.selectOption('#org_site', 'Hagebyskolan');
  await reporter.selectOption('#person_role_new', 'witness');
  await reporter.fill('#person_name_new', witness);
  await reporter.fill('#action_what_new', 'Väktare kontrollerade skolgården');
  await reporter.selectOption('#tlp', 'GREEN');
  // The panel says who receives it, and what each sees, before anything is filed.
  await reporter.waitForFunction(() => document.querySelectorAll('#recipients section.recipient').length >= 3, null, { timeout: 10000 });
  const panelAt = (org) => reporter.locator(`#recipients section[data-org="${org}"]`).innerText();
  const [atPolice, atShop, atGuards] = [await panelAt(police.org_id), await panelAt(shop.org_id), await panelAt(guards.org_id)];
  check(atPolice.includes(title) && atPolice.includes(witness), `the panel, police: ${atPolice}`);
  check(atShop.includes('500 m') && !atShop.includes(title) && !atShop.includes(witness), `the panel, shop: ${atShop}`);
  check(atGuards.includes(title) && !atGuards.includes(witness), `the panel, guards: ${atGuards}`);
  await reporter.evaluate(() => document.getElementById('recipients').scrollIntoView({ block: 'start' }));
  await shot(reporter, 'reporter-recipients-panel');
  await reporter.locator('#report-form button.primary').scrollIntoViewIfNeeded();
  const filedAt = Date.now();
  await Promise.all([reporter.waitForURL(/\/console\/reports\/[0-9a-f-]+$/), reporter.click('#report-form button.primary')]);
  const reportId = reporter.url().split('/').pop();

  // The police map shows it within two seconds, without a reload.
  await coordinator.waitForFunction((t) => document.getElementById('list').innerText.includes(t), title, { timeout: 2000 });
  const shownAfter = Date.now() - filedAt;
  console.log(`police map showed the filed report after ${shownAfter} ms`);
  await shot(coordinator, 'police-sees-report');

  // The shop sees the 500 m square and the day: no title, no person.
  const shopkeeper = await person('shop manager');
  await shopkeeper.goto(shop.console_url);
  await mapReady(shopkeeper);
  await shopkeeper.waitForFunction((id) => document.querySelector(`#list li[data-id="${id}"]`), reportId, { timeout: 5000 });
  const item = await shopkeeper.locator(`#list li[data-id="${reportId}"]`).innerText();
  check(item.includes('500 m-ruta'), `the shop's list item is a 500 m square: ${item}`);
  check(!/\d\d:\d\d/.test(item), `the shop's list item gives the day, not a time: ${item}`);
  const shopText = await shopkeeper.locator('body').innerText();
  check(!shopText.includes(title) && !shopText.includes(witness), 'the shop sees neither the title nor the witness');
  await shopkeeper.goto(`${shop.api_url}/console/reports/${reportId}`);
  const received = await shopkeeper.locator('main').innerText();
  check(!received.includes(title) && !received.includes(witness) && received.includes('skadegörelse'), `the shop's report page: ${received}`);
  await shopkeeper.goto(shop.api_url + '/console/');
  await mapReady(shopkeeper);
  await shot(shopkeeper, 'shop-sees-square');

  // The reporter retracts it; it leaves the police map.
  await reporter.goto(`${municipality.api_url}/console/reports/${reportId}/retract`);
  await reporter.fill('#reason', 'Dubbelrapporterad');
  await shot(reporter, 'reporter-retracts');
  const retractedAt = Date.now();
  await Promise.all([reporter.waitForURL(`**/console/reports/${reportId}`), reporter.click('button.danger')]);
  await coordinator.waitForFunction((t) => !document.getElementById('list').innerText.includes(t), title, { timeout: 2000 });
  console.log(`police map dropped the retracted report after ${Date.now() - retractedAt} ms`);
  await shot(coordinator, 'police-after-retraction');

  // An urgent report, marked so on the phone: the police coordinator's open page shows it as an
  // alert within two seconds, without a reload, until the coordinator says it was seen; the
  // municipality's report page then says the police has seen it.
  const alarm = `Pågående hot vid Hagebyskolan ${Date.now() % 100000}`;
  await reporter.goto(`${municipality.api_url}/console/reports/new`);
  await reporter.selectOption('#category', 'threat');
  await reporter.selectOption('#severity', 'severe');
  await reporter.fill('#title', alarm);
  await reporter.selectOption('#org_site', 'Hagebyskolan');
  await reporter.check('#urgent');
  await reporter.locator('#report-form button.primary').scrollIntoViewIfNeeded();
  const alarmedAt = Date.now();
  await Promise.all([reporter.waitForURL(/\/console\/reports\/[0-9a-f-]+$/), reporter.click('#report-form button.primary')]);
  const alarmId = reporter.url().split('/').pop();
  await coordinator.waitForFunction((t) => (document.getElementById('alerts')?.innerText || '').includes(t), alarm, { timeout: 2000 });
  console.log(`police console showed the urgent alert after ${Date.now() - alarmedAt} ms`);
  await shot(coordinator, 'police-alerted');
  await coordinator.goto(`${police.api_url}/console/patrol?window=24h`);
  check((await coordinator.locator('#alerts').innerText()).includes(alarm), 'the alert stays on every page until seen');
  await Promise.all([coordinator.waitForURL('**/console/patrol?window=24h'), coordinator.click('#alerts .alert button')]);
  check(!(await coordinator.locator('#alerts').innerText()).includes(alarm), 'a seen alert leaves the page');
  let seenBy = '';
  const namesPolice = (text) => text.includes(police.name) || text.includes(police.org_id);
  for (let tries = 0; tries < 40 && !namesPolice(seenBy); tries++) {
    await reporter.goto(`${municipality.api_url}/console/reports/${alarmId}`);
    seenBy = await reporter.locator('section.seen-by').innerText();
  }
  check(namesPolice(seenBy), `the municipality's page says the police has seen the alert: ${seenBy}`);
  await shot(reporter, 'municipality-sees-who-saw-the-alert');

  // The municipality's coordinator asks the guard company, from the urgent report's page, for a
  // patrol tonight; the guards' coordinator accepts, answers and closes it, and the municipality's
  // open thread follows each step without a reload.
  // Both sign in with the node's development token (the demo's single-use links are kept for the
  // people further on).
  const signIn = async (page, node) => {
    await page.goto(`${node.api_url}/console/signin`);
    await page.fill('#token', node.token);
    await Promise.all([page.waitForURL('**/console/'), page.click('button[type="submit"]')]);
  };
  const security = await person('municipality coordinator');
  await signIn(security, municipality);
  await security.goto(`${municipality.api_url}/console/reports/${alarmId}`);
  await Promise.all([security.waitForURL(/\/console\/requests\?report=/), security.click('a[href^="/console/requests?report="]')]);
  check(await security.inputValue('#report') === alarmId, 'the report page fills in the report');
  await security.selectOption('#to', guards.org_id);
  const ask = `Kan en patrull passera Hagebyskolan i natt? ${Date.now() % 100000}`;
  await security.fill('#subject', ask);
  await security.fill('#details', 'Hot mot personal i kväll; håll särskild koll på entrén.');
  await security.selectOption('#site', 'Hagebyskolan');
  await shot(security, 'municipality-asks-guards');
  await Promise.all([security.waitForURL(/\/console\/requests\/[0-9a-f-]+$/), security.click('form[action="/console/requests"] button.primary')]);
  const requestId = security.url().split('/').pop();
  check((await security.locator('#request-status').getAttribute('data-status')) === 'open', 'the request is open');
  const dispatcher = await person('guard company coordinator');
  await signIn(dispatcher, guards);
  await dispatcher.goto(`${guards.api_url}/console/requests`);
  await dispatcher.waitForSelector(`tr[data-request="${requestId}"]`, { timeout: 10000 });
  await Promise.all([dispatcher.waitForURL(`**/console/requests/${requestId}`), dispatcher.click(`a[href="/console/requests/${requestId}"]`)]);
  const asked = await dispatcher.locator('main').innerText();
  check(asked.includes(ask) && asked.includes('Hagebyskolan'), `the guards read the request: ${asked}`);
  await shot(dispatcher, 'guards-read-request');
  const answer = 'Patrull 2 passerade 23:10 och 01:30; lugnt vid entrén.';
  for (const [kind, text] of [['accepted', ''], ['answered', answer], ['done', '']]) {
    await dispatcher.fill('#text', text);
    await dispatcher.click(`button[value="${kind}"]`);
    await dispatcher.waitForSelector(`#steps li[data-step="${kind}"]`, { timeout: 5000 });
  }
  check(await dispatcher.locator('button[name="kind"]').count() === 0, 'a closed request offers no further step');
  await security.waitForFunction(() => document.getElementById('request-status')?.dataset.status === 'done', null, { timeout: 5000 });
  const thread = await security.locator('#steps').innerText();
  check(thread.includes(answer), `the municipality's thread shows the answer: ${thread}`);
  await shot(security, 'municipality-sees-the-answer');

  // An agreement, proposed by the police and signed by the guard company, each in a browser.
  const agreementId = `se-polisen-vaktbolaget-natt-${Date.now() % 100000}`;
  const toml = `id = "${agreementId}"
title = "Nattlig lägesbild, polis och väktare"
purpose = "Polisen delar nattens inbrott och skadegörelse med väktarbolaget för ronderna."
valid_from = 2026-01-01T00:00:00Z
valid_until = 2030-12-31T23:59:59Z
evaluation_date = 2028-06-01
retention_days = 30

[[parties]]
org_id = "se-polisen-ost"
name = "Polisen region Öst"
role = "police"

[[parties]]
org_id = "se-vaktbolaget-ost"
name = "Vaktbolaget Öst AB"
role = "guard_company"

[[flows]]
from = ["se-polisen-ost"]
to = ["se-vaktbolaget-ost"]
categories = ["burglary", "vandalism"]
max_tlp = "GREEN"

[flows.fields]
title = "keep"
observed_at = "hour"
location = "grid 500m"
`;
  await coordinator.goto(`${police.api_url}/console/agreements/new`);
  await coordinator.fill('#text', toml);
  await shot(coordinator, 'police-proposes-agreement');
  await Promise.all([coordinator.waitForURL(`**/console/agreements/${agreementId}`), coordinator.click('form[enctype] button.primary')]);
  const guardAdmin = await person('guard company admin');
  await guardAdmin.goto(guards.console_url);
  await guardAdmin.goto(`${guards.api_url}/console/agreements`);
  await guardAdmin.waitForSelector(`a[href="/console/agreements/${agreementId}"]`, { timeout: 10000 }).catch(async () => {
    await guardAdmin.reload();
    await guardAdmin.waitForSelector(`a[href="/console/agreements/${agreementId}"]`, { timeout: 10000 });
  });
  await guardAdmin.click(`a[href="/console/agreements/${agreementId}"]`);
  await shot(guardAdmin, 'guards-read-proposal');
  await guardAdmin.click(`a[href="/console/agreements/${agreementId}/sign"]`);
  const consequence = await guardAdmin.locator('.consequence').innerText();
  check(consequence.length > 20, 'signing names its consequence first');
  await shot(guardAdmin, 'guards-confirm-signing');
  await Promise.all([guardAdmin.waitForURL(`**/console/agreements/${agreementId}`), guardAdmin.click('#confirm')]);
  for (const [who, page, node] of [['guards', guardAdmin, guards], ['police', coordinator, police]]) {
    const deadline = Date.now() + 10000;
    let state = '';
    while (Date.now() < deadline) {
      await page.goto(`${node.api_url}/console/agreements/${agreementId}`);
      state = await page.locator('#agreement-state').getAttribute('class');
      if (state.includes('state-active')) break;
      await page.waitForTimeout(200);
    }
    check(state.includes('state-active'), `the agreement is in force at the ${who}: ${state}`);
  }
  await shot(coordinator, 'agreement-in-force');

  // The patrol sheet, printed: the page's frame and its form left off, the table on A4.
  await coordinator.goto(`${police.api_url}/console/patrol?window=24h`);
  await coordinator.emulateMedia({ media: 'print' });
  const hidden = await coordinator.evaluate(() => ['header.top', 'form.filters', 'footer.bottom']
    .map((s) => getComputedStyle(document.querySelector(s)).display));
  check(hidden.every((d) => d === 'none'), `printing hides the frame and the form: ${hidden}`);
  check(await coordinator.locator('table.patrol tbody tr').count() > 0, 'the sheet lists the window');
  const pdf = await coordinator.pdf({ path: path.join(shots, 'patrol-sheet.pdf'), format: 'A4', printBackground: false });
  check(pdf.length > 1000, 'the sheet prints to A4');
  await coordinator.emulateMedia({ media: 'screen' });

  // Accessibility, judged by axe-core on every page (WCAG 2 A and AA). The page's CSP forbids the
  // injected checker, so this browser alone lets it in; Leaflet's map itself is left to its makers.
  const auditor = await person('accessibility check', { options: { bypassCSP: true } });
  await signIn(auditor, municipality);
  const pages = ['/console/', '/console/reports/new', `/console/reports/${reportId}`, '/console/agreements',
    '/console/agreements/se-norrkoping-trygghetsoverenskommelse', '/console/agreements/new', '/console/partners',
    '/console/audit', '/console/dead-letters', '/console/subscriptions', '/console/patrol', '/console/me',
    '/console/requests', `/console/requests/${requestId}`];
  for (const route of pages) {
    await auditor.goto(`${municipality.api_url}${route}`);
    await auditor.waitForLoadState('networkidle');
    await auditor.addScriptTag({ path: axeSource });
    const found = await auditor.evaluate(() => window.axe.run(
      { exclude: [['#map'], ['#pick-map']] },
      { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } },
    ));
    for (const v of found.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')) {
      problems.push(`${route}: ${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')}`);
    }
  }
  console.log(`axe-core checked ${pages.length} pages`);
} catch (error) {
  problems.push(`step ${step + 1}: ${error.message}`);
} finally {
  await browser.close();
}

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`the console journey passed; ${step} screenshots in ${shots}`);
