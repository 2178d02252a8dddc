// The /live page as a viewer sees it, in headless Chromium (Debian's, driven by
// playwright-core), against a real server, nginx-rtmp ingest and GStreamer publisher.
// Run by tests/tests/page.rs, which starts the stack and passes:
//   FEZA_BASE, FEZA_SELLER_TOKEN, FEZA_RECORDING (a small H.264/AAC recording)
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";

const base = process.env.FEZA_BASE;
const seller = process.env.FEZA_SELLER_TOKEN;
const recording = process.env.FEZA_RECORDING;
const step = (what) => console.log(`step: ${what}`);

async function api(method, path, token, body, headers = {}) {
  const r = await fetch(base + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  try { return JSON.parse(text); } catch { return { headers: r.headers }; }
}
const viewer = async (name) => api("POST", "/api/viewers", null, { display_name: name });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
});
let publisher;
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 } }); // a phone
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => console.log(`page: ${m.type()}: ${m.text()}`));
  await page.goto(`${base}/live`);
  await page.getByText("FezaMarket Live").waitFor();
  await page.getByTestId("live-empty").waitFor();

  step("a show goes live through the API and appears without reloading");
  const show = await api("POST", "/api/streams", seller, { title: "Spring sale" });
  const started = await api("POST", `/api/streams/${show.id}/start`, seller);
  const url = `${started.ingest.url}/${started.ingest.stream_key}`;
  publisher = spawn("gst-launch-1.0", ["-q", ...(
    `videotestsrc is-live=true pattern=smpte ! video/x-raw,width=320,height=240,framerate=15/1 ` +
    `! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=300 ! h264parse ` +
    `! flvmux name=mux streamable=true ! rtmp2sink location=${url} ` +
    `audiotestsrc is-live=true ! audio/x-raw,rate=44100,channels=2 ! voaacenc ! aacparse ! mux.`
  ).split(" ")], { stdio: "ignore" });
  await page.waitForFunction(() => document.querySelector("[data-testid=main-title]")?.textContent === "Spring sale", null, { timeout: 20000 });

  step("its live video plays");
  await page.waitForFunction(() => document.querySelector("#player").currentTime > 1, null, { timeout: 40000 });

  step("its viewer count rises as viewers join, and falls when they stop heartbeating");
  const watchers = [await viewer("A"), await viewer("B")];
  for (const w of watchers) await api("POST", `/api/streams/${show.id}/viewers`, w.token);
  // The page itself watches too.
  await page.waitForFunction(() => document.querySelector("[data-testid=main-counts]").textContent.startsWith("3 watching"), null, { timeout: 10000 });
  await page.waitForFunction(() => document.querySelector("[data-testid=main-counts]").textContent.startsWith("1 watching"), null, { timeout: 30000 });

  step("a comment shows up as text, and goes when the seller deletes it");
  const troll = await viewer("Troll");
  const evil = "<img src=x onerror=window.pwned=1><script>window.pwned=1</script>hello";
  const c = await api("POST", `/api/streams/${show.id}/comments`, troll.token, { text: evil });
  const item = page.locator(`[data-testid=chat] li[data-id="${c.id}"]`);
  await item.waitFor({ timeout: 10000 });
  const shown = await item.textContent();
  if (!shown.includes("<script>") || !shown.includes("Troll")) throw new Error(`comment shown as ${shown}`);
  if (await page.evaluate(() => window.pwned) || await page.locator("[data-testid=chat] img, [data-testid=chat] script").count()) {
    throw new Error("a comment was rendered as HTML");
  }
  await api("DELETE", `/api/streams/${show.id}/comments/${c.id}`, seller);
  await item.waitFor({ state: "detached", timeout: 10000 });

  step("a like from the page counts");
  await page.getByTestId("like").click();
  await page.waitForFunction(() => document.querySelector("[data-testid=main-counts]").textContent.includes("1 like"), null, { timeout: 10000 });

  step("ended with save, the show leaves Live Now and its replay plays from Recent");
  const ended = await api("POST", `/api/streams/${show.id}/end`, seller, { outcome: "save" });
  publisher.kill();
  const bytes = readFileSync(recording);
  const meta = `stream_id ${Buffer.from(show.id).toString("base64")}`;
  const created = await fetch(`${base}${ended.upload.endpoint}`, {
    method: "POST",
    headers: { authorization: `Bearer ${seller}`, "tus-resumable": "1.0.0", "upload-length": String(bytes.length), "upload-metadata": meta },
  });
  if (created.status !== 201) throw new Error(`tus create: ${created.status}`);
  const patched = await fetch(base + created.headers.get("location"), {
    method: "PATCH",
    headers: { authorization: `Bearer ${seller}`, "tus-resumable": "1.0.0", "upload-offset": "0", "content-type": "application/offset+octet-stream" },
    body: bytes,
  });
  if (patched.status !== 204) throw new Error(`tus patch: ${patched.status}`);
  await page.getByTestId("live-empty").waitFor({ timeout: 15000 });
  const card = page.locator(`[data-testid=recent-card][data-id="${show.id}"]`);
  await card.waitFor({ timeout: 15000 });
  await card.getByText("REPLAY").waitFor();
  await page.waitForFunction((id) => {
    const b = document.querySelector(`[data-testid=recent-card][data-id="${id}"] [data-testid=play-replay]`);
    return b && !b.disabled;
  }, show.id, { timeout: 30000 });
  await card.getByTestId("play-replay").click();
  await page.waitForFunction(() => document.querySelector("#player").currentTime > 1, null, { timeout: 20000 });

  step("the replay plays on while the catalog changes (a show is scheduled)");
  const replaySrc = await page.evaluate(() => document.querySelector("#player").currentSrc);
  const later = new Date(Date.now() + 3 * 3600 * 1000).toISOString();
  const next = await api("POST", "/api/streams", seller, { title: "Autumn glazes", scheduled_at: later });
  await page.locator(`[data-testid=upcoming-card][data-id="${next.id}"]`).waitFor({ timeout: 15000 });
  const after = await page.evaluate(() => ({
    stage: !document.querySelector("#live .stage").hidden,
    title: document.querySelector("[data-testid=main-title]").textContent,
    src: document.querySelector("#player").currentSrc,
  }));
  if (await page.locator("#live-title").textContent() !== "Replay") throw new Error("a chosen replay is headed as live");
  if (!after.stage || after.title !== "Spring sale" || after.src !== replaySrc) {
    throw new Error(`the replay was taken away: ${JSON.stringify(after)} (was ${replaySrc})`);
  }

  step("/live/{id} works on its own");
  const own = await browser.newPage();
  await own.goto(`${base}/live/${show.id}`);
  await own.waitForFunction(() => document.querySelector("[data-testid=main-title]")?.textContent === "Spring sale", null, { timeout: 10000 });
  await own.waitForFunction(() => document.querySelector("#player").currentTime > 1, null, { timeout: 20000 });
  if (await own.evaluate(() => !document.querySelector("[data-testid=player-notice]").hidden)) {
    throw new Error("a notice over a replay that plays");
  }

  step("an upcoming show's start counts down while the page stays open");
  const waiting = await browser.newPage();
  await waiting.clock.install();
  await waiting.goto(`${base}/live`);
  const starts = waiting.locator(`[data-testid=upcoming-card][data-id="${next.id}"] [data-testid=starts]`);
  await starts.waitFor({ timeout: 10000 });
  const read = [await starts.textContent()];
  for (const ahead of ["02:30:00", "00:29:00", "00:01:00", "00:20:00"]) {
    await waiting.clock.fastForward(ahead);
    read.push(await starts.textContent());
  }
  const expected = ["starts in 3 h", "starts in 30 min", "starts in 1 min", "starting now", "due earlier, not started yet"];
  if (JSON.stringify(read) !== JSON.stringify(expected)) throw new Error(`the start read ${JSON.stringify(read)}`);

  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("PASS: the /live page");
} finally {
  publisher?.kill();
  await browser.close();
}
