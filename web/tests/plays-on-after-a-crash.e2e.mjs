// A viewer watching a live show on its /live/{id} page while the seller's broadcaster
// crashes and is started again on the same show: the player picks the show up again
// by itself (no reload), and plays what is broadcast after. While the picture stands
// still the player says it waits for the seller's video; once it plays on, it does not.
// Run by tests/tests/page.rs, which passes FEZA_BASE, FEZA_SHOW_ID, FEZA_PLAYING (a file
// this script creates once the show plays) and FEZA_TAKEN_UP (a file the test creates
// once the show was taken up again).
import { existsSync, writeFileSync } from "node:fs";
import { openShowPage } from "./show-page.mjs";

const { FEZA_BASE: base, FEZA_SHOW_ID: id, FEZA_PLAYING: playing, FEZA_TAKEN_UP: takenUp } = process.env;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const { browser, page, errors } = await openShowPage(base, id);
try {
  const time = () => page.evaluate(() => document.querySelector("#player")?.currentTime ?? 0);
  const notice = () => page.evaluate(() => {
    const n = document.querySelector("[data-testid=player-notice]");
    return n && !n.hidden && n.getBoundingClientRect().height > 0 ? n.textContent : null;
  });
  try {
    await page.waitForFunction(() => document.querySelector("#player")?.currentTime > 3, null, { timeout: 30000 });
  } catch (e) {
    throw new Error(`the live show did not play at first (${await time()} s)`);
  }
  if (await notice()) throw new Error(`a notice over a show that plays: ${await notice()}`);
  writeFileSync(playing, "");
  console.log(`playing at ${(await time()).toFixed(1)} s; waiting for the crash and the show taken up again`);
  let told = null;
  for (let waited = 0; !existsSync(takenUp); waited++) {
    if (waited > 240) throw new Error("the show was never taken up again");
    told ??= await notice();
    await sleep(250);
  }
  const at = await time();
  console.log(`the show is taken up again; the player is at ${at.toFixed(1)} s`);
  for (let waited = 0; (await time()) <= at + 5; waited++) {
    if (waited > 180) {
      throw new Error(`the player did not pick the show up again: still at ${(await time()).toFixed(1)} s, was ${at.toFixed(1)} s`);
    }
    told ??= await notice();
    await sleep(250);
  }
  if (!told?.includes("Waiting for the seller's video")) {
    throw new Error(`the picture stood still without a word (notice: ${told})`);
  }
  console.log(`while the picture stood still the player said: ${told}`);
  // Give the stall watch its half-second look after the picture moved again.
  await sleep(1000);
  if (await notice()) throw new Error(`the notice stayed once the show played on: ${await notice()}`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(`PASS: the player played on to ${(await time()).toFixed(1)} s`);
} finally {
  await browser.close();
}
