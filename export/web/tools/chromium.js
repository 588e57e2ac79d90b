// The headless Chromium the browser tests and benchmarks drive: Debian's `chromium` (or $KDEDGE_CHROMIUM) through
// playwright-core, with no browser download. Chromium runs here as root only without its sandbox, and its background
// connections must be off on a closed network.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

import { chromium } from "playwright-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"];
export const FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--no-first-run"];

export function findChromium() {
  const found = [process.env.KDEDGE_CHROMIUM, ...CANDIDATES].find((p) => p && existsSync(p));
  return found ?? null;
}

export const MISSING = "no Chromium found: install Debian's (apt-get install chromium) or set KDEDGE_CHROMIUM to a " +
  "Chromium or Chrome executable";

// A fresh browser (playwright gives each launch a fresh --user-data-dir), and its name and version as reported.
export async function launch() {
  const executablePath = findChromium();
  if (!executablePath) throw new Error(MISSING);
  const browser = await chromium.launch({ executablePath, headless: true, args: FLAGS });
  let product = `Chromium ${browser.version()}`;
  try {
    product = execFileSync(executablePath, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch { /* the version playwright read is enough */ }
  return { browser, product: `${product} (${executablePath})` };
}
