// How long the console's situation picture takes to draw, by the browser's own clock: from the
// navigation's start to the mark the page sets once every report is on the map and listed
// (`lagesbild:map-drawn`). The benchmark runs it (bench/src/console.rs):
//
//   node measure.mjs SIGN_IN_LINK PICTURE_URL LOADS
//
// prints {"ms": [...], "drawn": N}, one load after signing in with the single-use link, then each
// load a fresh navigation of the same page.
import { chromium } from 'playwright-core';

const [signIn, picture, loads] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
});
try {
  const page = await (await browser.newContext({ viewport: { width: 1366, height: 860 } })).newPage();
  await page.goto(signIn);
  const ms = [];
  let drawn = 0;
  for (let i = 0; i < Number(loads); i += 1) {
    await page.goto(picture);
    await page.waitForSelector('#map[data-drawn]', { timeout: 60000 });
    const mark = await page.evaluate(() => performance.getEntriesByName('lagesbild:map-drawn')[0].startTime);
    drawn = Number(await page.getAttribute('#map', 'data-drawn'));
    ms.push(mark);
  }
  console.log(JSON.stringify({ ms, drawn }));
} finally {
  await browser.close();
}
