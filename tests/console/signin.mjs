// Signing in to the console through the organisation's identity provider, in Debian's Chromium:
//
//   node signin.mjs NODE_URL SCREENSHOT_DIR
//
// The node's `/` leads to its sign-in page, whose button leads to the provider (tests/oidc, the npm
// package oidc-provider); a person signs in there as `reporter-sara` (the provider gives a login
// named reporter-* the reporter role) and comes back to the console signed in, with a reporter's
// menu. Exits non-zero, saying what went wrong.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [base, shots] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const problems = [];
try {
  const page = await (await browser.newContext({ locale: 'sv-SE', viewport: { width: 1024, height: 768 } })).newPage();
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  await page.goto(`${base}/`);
  if (!page.url().startsWith(`${base}/console/signin`)) throw new Error(`/ led to ${page.url()}, not the sign-in page`);
  await page.screenshot({ path: path.join(shots, '01-signin.png') });
  await page.click('a[href="/auth/login"]');
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', 'reporter-sara');
  await page.fill('input[name="password"]', 'any');
  await page.screenshot({ path: path.join(shots, '02-provider.png') });
  await page.click('button[type="submit"]');
  await page.waitForLoadState('load');
  if (!page.url().startsWith(base)) {
    // The provider asks for consent once.
    await page.click('button[type="submit"]');
  }
  await page.waitForURL(`${base}/console/`, { timeout: 15000 });
  const who = await page.locator('header .who').innerText();
  const menu = await page.locator('header nav').innerText();
  if (!who.includes('user:reporter-sara') || !who.includes('säkerhetsombud')) throw new Error(`signed in as: ${who}`);
  if (!menu.includes('Ny rapport') || menu.includes('Överenskommelser')) throw new Error(`a reporter's menu: ${menu}`);
  await page.screenshot({ path: path.join(shots, '03-signed-in.png') });
  await page.click('header .who button');
  await page.waitForURL(`${base}/console/signin`);
  const again = await page.goto(`${base}/console/reports/new`);
  if (!page.url().includes('/console/signin')) throw new Error(`after signing out, a page still opened (${again.status()})`);
} catch (error) {
  problems.push(error.message);
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('signed in through the provider and out again');
