// Headless Chromium through puppeteer-core (no browser is downloaded): Debian's `chromium`, or the
// one named by $CHROMIUM. scripts/install-chromium.sh installs it where it is missing.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** The Chromium executable, or null with the reason. */
export function findChromium() {
  if (process.env.CHROMIUM) return existsSync(process.env.CHROMIUM) ? { path: process.env.CHROMIUM } : { path: null, reason: `$CHROMIUM=${process.env.CHROMIUM} does not exist` };
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const p = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (p) return { path: p };
    } catch {
      // not on PATH
    }
  }
  return { path: null, reason: 'no chromium on PATH (scripts/install-chromium.sh installs Debian\'s)' };
}

export async function launch(executablePath) {
  const { default: puppeteer } = await import('puppeteer-core');
  return puppeteer.launch({
    executablePath,
    headless: true,
    // root in a container has no user namespace sandbox; the page is our own file
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--font-render-hinting=none'],
  });
}

/** Opens the page, waits for every chart, writes a PNG of its top `height` pixels (or the whole page). */
export async function screenshot(htmlPath, pngPath, { width = 1280, height = 0 } = {}) {
  const found = findChromium();
  if (!found.path) throw new Error(`cannot take the screenshot: ${found.reason}`);
  const browser = await launch(found.path);
  try {
    const page = await browser.newPage();
    await page.setViewport({ width, height: height || 900, deviceScaleFactor: 1 });
    await page.goto(`file://${htmlPath}`, { waitUntil: 'load' });
    await page.waitForFunction(() => document.body.dataset.rendered !== 'pending', { timeout: 60_000 });
    const state = await page.evaluate(() => document.body.dataset.rendered);
    if (state !== 'ok') throw new Error(`the page did not render: ${state}`);
    await page.screenshot({ path: pngPath, fullPage: !height });
  } finally {
    await browser.close();
  }
}
