// Open a Snakemake report in headless Chromium, click through to one edit's panel page, check that its
// images decoded, and save a screenshot. Needs only Node >= 20 (run with --experimental-websocket on
// Node 20; Node 22 has WebSocket built in) and Debian's `chromium`; talks to Chromium over the DevTools
// protocol, so no npm package is needed.
//
//   node --experimental-websocket workflow/report/screenshot.mjs results/report.html docs/report.png \
//       [--category "1. Edits"] [--subcategory dreammotion (the variant)] [--row ID] [--width 1400] [--height 1000]
//
// Prints a JSON summary (iframe source kind, every <img> in the panel page with its natural size) and
// exits 1 when the panel page or one of its images did not load.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

function parseArgs(argv) {
  const [report, out, ...rest] = argv;
  if (!report || !out) {
    console.error("usage: screenshot.mjs REPORT.html OUT.png [--category C] [--subcategory S] [--row ID] [--width W] [--height H]");
    process.exit(2);
  }
  const options = { report: resolve(report), out: resolve(out), category: "1. Edits", subcategory: "dreammotion", row: null, width: 1400, height: 1000 };
  for (let i = 0; i < rest.length; i += 2) {
    const key = rest[i].replace(/^--/, "");
    if (!(key in options)) throw new Error(`unknown option ${rest[i]}`);
    options[key] = ["width", "height"].includes(key) ? Number(rest[i + 1]) : rest[i + 1];
  }
  if (!existsSync(options.report)) throw new Error(`report ${options.report} does not exist`);
  return options;
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function waitFor(what, check, timeoutMs = 20000) {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const value = await check();
    if (value) return value;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function launchChromium(userDataDir) {
  const flags = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    `--user-data-dir=${userDataDir}`, "--remote-debugging-port=0", "about:blank",
  ];
  return spawn(process.env.CHROMIUM || "chromium", flags, { stdio: ["ignore", "ignore", "pipe"] });
}

// A minimal DevTools protocol client over one page target's WebSocket.
class Page {
  constructor(socket) {
    this.socket = socket;
    this.nextId = 1;
    this.pending = new Map();
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      if (message.id && this.pending.has(message.id)) {
        const { resolve: ok, reject } = this.pending.get(message.id);
        this.pending.delete(message.id);
        message.error ? reject(new Error(JSON.stringify(message.error))) : ok(message.result);
      }
    });
  }

  static async connect(url) {
    const socket = new WebSocket(url);
    await new Promise((ok, reject) => {
      socket.addEventListener("open", ok);
      socket.addEventListener("error", reject);
    });
    return new Page(socket);
  }

  send(method, params = {}) {
    const id = this.nextId++;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise((ok, reject) => this.pending.set(id, { resolve: ok, reject }));
  }

  async evaluate(expression, contextId = undefined) {
    const result = await this.send("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true, contextId });
    if (result.exceptionDetails) throw new Error(`page script failed: ${JSON.stringify(result.exceptionDetails)}`);
    return result.result.value;
  }
}

// Click the first link whose visible text is `text` (the report's menus are links).
const clickLink = (text) => `(() => {
  const link = [...document.querySelectorAll("a")].find((a) => a.innerText.trim() === ${JSON.stringify(text)});
  if (!link) return false;
  link.click();
  return true;
})()`;

// Click the view (eye) button of the result row labelled `row`, or of the first row.
const clickRow = (row) => `(() => {
  const rows = [...document.querySelectorAll("tbody tr")];
  const wanted = ${JSON.stringify(row)};
  const tr = wanted === null ? rows[0] : rows.find((r) => r.cells[0] && r.cells[0].innerText.trim() === wanted);
  if (!tr) return false;
  tr.querySelector("td:last-child a").click();
  return tr.cells[0].innerText.trim();
})()`;

const IMAGE_STATUS = `(async () => {
  const images = [...document.images];
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  return images.map((img) => ({ id: img.id, src: img.src.slice(0, 22), complete: img.complete, width: img.naturalWidth, height: img.naturalHeight }));
})()`;

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const userDataDir = mkdtempSync(join(tmpdir(), "report-chromium-"));
  const browser = launchChromium(userDataDir);
  let stderr = "";
  browser.stderr.on("data", (chunk) => (stderr += chunk));
  try {
    const portFile = join(userDataDir, "DevToolsActivePort");
    await waitFor("chromium to start", () => existsSync(portFile) && readFileSync(portFile, "utf8").includes("\n"));
    const port = readFileSync(portFile, "utf8").split("\n")[0];
    const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const page = await Page.connect(targets.find((t) => t.type === "page").webSocketDebuggerUrl);
    await page.send("Page.enable");
    await page.send("Runtime.enable");
    await page.send("Emulation.setDeviceMetricsOverride", { width: options.width, height: options.height, deviceScaleFactor: 1, mobile: false });
    await page.send("Page.navigate", { url: pathToFileURL(options.report).href });
    await waitFor("the report to render", () => page.evaluate(clickLink(options.category)));
    if (options.subcategory) {
      await waitFor(`subcategory ${options.subcategory}`, () => page.evaluate(clickLink(options.subcategory)));
    }
    const row = await waitFor("a result row", () => page.evaluate(clickRow(options.row)));
    const iframeSource = await waitFor("the panel page frame", () =>
      page.evaluate(`(() => { const f = document.querySelector("iframe"); return f ? f.src.slice(0, 30) : false; })()`));
    // The panel page is a data: URL frame (opaque origin): evaluate inside it through an isolated world.
    const tree = await page.send("Page.getFrameTree");
    const child = await waitFor("the frame to load", async () => {
      const frames = (await page.send("Page.getFrameTree")).frameTree.childFrames || [];
      return frames.find((f) => f.frame.url.startsWith("data:text/html")) || false;
    });
    const world = await page.send("Page.createIsolatedWorld", { frameId: child.frame.id, worldName: "check" });
    const images = await waitFor("the panel images", async () => {
      const status = await page.evaluate(IMAGE_STATUS, world.executionContextId);
      return status.length > 0 && status.every((img) => img.complete && img.width > 0) ? status : false;
    });
    await sleep(500); // let the GIF advance past its first frame
    const shot = await page.send("Page.captureScreenshot", { format: "png" });
    writeFileSync(options.out, Buffer.from(shot.data, "base64"));
    console.log(JSON.stringify({ report: options.report, row, iframe: iframeSource, frames: 1 + (tree.frameTree.childFrames || []).length, images, screenshot: options.out }, null, 1));
  } finally {
    browser.kill();
    await sleep(300);
    rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(`screenshot.mjs: ${error.message}`);
  process.exit(1);
});
