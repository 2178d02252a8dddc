// FezaMarket Live: the public page. Lists what is live, upcoming and recent, plays a
// live show (HLS through hls.js) or a replay, and keeps everything current through
// Server-Sent Events. User text is only ever set as text, never as HTML.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
};

// One show page (/live/{id}) or the whole catalog (/live).
const onlyId = (location.pathname.match(/^\/live\/([^/]+)$/) || [])[1];

// --- the viewer: an anonymous device identity, made on the first action ---
let viewer = JSON.parse(localStorage.getItem("feza.viewer") || "null");
async function ensureViewer() {
  if (!viewer) {
    const r = await fetch("/api/viewers", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ display_name: "Viewer" }),
    });
    if (!r.ok) throw new Error("could not sign in as a viewer");
    viewer = await r.json();
    localStorage.setItem("feza.viewer", JSON.stringify(viewer));
  }
  return viewer;
}
async function call(method, path, body) {
  const v = await ensureViewer();
  const r = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${v.token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = r.headers.get("content-type")?.includes("json") ? await r.json() : null;
  if (!r.ok) throw new Error(data?.error?.message || `${r.status}`);
  return data;
}

// --- formatting ---
const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
const countsLine = (c) =>
  `${plural(c.viewers, "watching", "watching")} · ${plural(c.likes, "like", "likes")} · ${plural(c.dislikes, "dislike", "dislikes")}`;
function startsIn(at) {
  const s = Math.round((new Date(at) - Date.now()) / 1000);
  if (s < -600) return "due earlier, not started yet";
  if (s <= 0) return "starting now";
  const m = Math.round(s / 60);
  if (m < 60) return `starts in ${m} min`;
  const h = Math.round(m / 60);
  return h < 48 ? `starts in ${h} h` : `starts in ${Math.round(h / 24)} days`;
}
const clock = (s) => {
  s = Math.round(s || 0);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
};

// --- the player ---
const video = $("#player");
let hls = null;
// A live show whose picture stops moving (the seller's connection dropped, or the show
// is just starting) says so over the player rather than freezing without a word; a
// viewer's own pause is not a stall.
const notice = $("[data-testid=player-notice]");
const waiting = notice.textContent;
let stallWatch = null;
function watchStalls(on) {
  clearInterval(stallWatch);
  stallWatch = null;
  notice.textContent = waiting;
  notice.hidden = true;
  if (!on) return;
  let last = -1, still = 0;
  stallWatch = setInterval(() => {
    const moving = video.currentTime !== last;
    last = video.currentTime;
    still = moving || video.paused ? 0 : still + 1;
    notice.hidden = still < 4; // 2 s without a new frame
  }, 500);
}
function play(src, isLive, autoplay = true) {
  if (hls) { hls.destroy(); hls = null; }
  video.removeAttribute("src");
  watchStalls(isLive);
  if (isLive && window.Hls && Hls.isSupported()) {
    const h = (hls = new Hls({ liveSyncDurationCount: 2 }));
    // The playlist may not exist yet in the first seconds of a show, and a network
    // hiccup must not end playback: retry rather than give up.
    h.on(Hls.Events.ERROR, (_, d) => {
      if (!d.fatal || hls !== h) return;
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) h.recoverMediaError();
      else setTimeout(() => { if (hls === h) { h.loadSource(src); h.startLoad(); } }, 2000);
    });
    h.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
    h.loadSource(src);
    h.attachMedia(video);
  } else {
    video.src = src;
  }
  if (autoplay) video.play().catch(() => {});
}
const say = (text) => {
  notice.textContent = text;
  notice.hidden = !text;
};

// --- the main show: player, counts, reactions, chat ---
let main = null; // { id, watchedLive, replayLoaded, session, heartbeat, events }
function leaveMain() {
  if (!main) return;
  watchStalls(false);
  clearInterval(main.heartbeat);
  main.events?.close();
  if (main.session && viewer) {
    fetch(`/api/streams/${main.id}/viewers/${main.session}`, {
      method: "DELETE", headers: { authorization: `Bearer ${viewer.token}` }, keepalive: true,
    });
  }
  main = null;
}
addEventListener("pagehide", leaveMain);

function addComment(c) {
  const list = $("[data-testid=chat]");
  if (list.querySelector(`[data-id="${CSS.escape(c.id)}"]`)) return;
  list.append(el("li", { dataset: { id: c.id } }, el("b", { textContent: c.viewer_name }), el("span", { textContent: c.text })));
  list.scrollTop = list.scrollHeight;
}

// The main show when it is not live (or no longer): its replay once ready; until then
// a word over the player. For one watched live to its end the live player stops (no
// more loading) and the replay waits for the viewer to press play.
function showNotLive(s) {
  watchStalls(false);
  clearInterval(main.heartbeat);
  if (hls) { hls.destroy(); hls = null; }
  $("#live .say").hidden = true;
  const r = s?.replay;
  if (r?.state === "ready" && r.video_url) {
    if (main.replayLoaded) return;
    main.replayLoaded = true;
    if (!main.watchedLive) return play(r.video_url, false);
    play(r.video_url, false, false);
    say("This show has ended. Its replay is ready: press play to watch it from the start.");
    video.addEventListener("play", () => say(""), { once: true });
    return;
  }
  const replay = !r ? "" : r.state === "failed" ? "There is no replay of this show." : "Its replay will be here once it is ready.";
  say(`${main.watchedLive ? "This show has ended." : ""} ${replay}`.trim());
}

async function showMain(stream) {
  if (main?.id === stream.id) return;
  leaveMain();
  const live = stream.status === "live";
  main = { id: stream.id, watchedLive: live };
  if (!onlyId) $("#live-title").textContent = live ? "Live Now" : "Replay";
  $("#live .stage").hidden = false;
  $("#live .empty").hidden = true;
  $("[data-testid=main-title]").textContent = stream.title;
  $("#live .seller").textContent = stream.seller.name;
  $("[data-testid=main-counts]").textContent = countsLine(stream.counts);
  $("[data-testid=chat]").replaceChildren();
  $("#live .say").hidden = !live;
  if (live) play(stream.playback_url, true);
  else showNotLive(stream);
  const me = main;
  if (live) {
    const page = await (await fetch(`/api/streams/${stream.id}/comments`)).json();
    page.comments.forEach(addComment);
    me.events = new EventSource(`/api/streams/${stream.id}/events`);
    me.events.addEventListener("counts", (e) => {
      $("[data-testid=main-counts]").textContent = countsLine(JSON.parse(e.data).counts);
    });
    me.events.addEventListener("comment", (e) => addComment(JSON.parse(e.data).comment));
    me.events.addEventListener("comment_deleted", (e) => {
      const id = JSON.parse(e.data).id;
      $(`[data-testid=chat] [data-id="${CSS.escape(id)}"]`)?.remove();
    });
    me.events.addEventListener("status", () => refresh());
    // Missed more than the server replays: the chat and the counts are loaded again.
    me.events.addEventListener("reset", async () => {
      const again = await (await fetch(`/api/streams/${stream.id}/comments`)).json();
      $("[data-testid=chat]").replaceChildren();
      again.comments.forEach(addComment);
      refresh();
    });
    try {
      const j = await call("POST", `/api/streams/${stream.id}/viewers`);
      me.session = j.session_id;
      me.heartbeat = setInterval(() => {
        call("POST", `/api/streams/${stream.id}/viewers/${me.session}/heartbeat`).catch(() => {});
      }, 10000);
    } catch (e) { console.warn("not counted as watching:", e.message); }
  }
}

for (const b of document.querySelectorAll("[data-reaction]")) {
  b.addEventListener("click", async () => {
    if (!main) return;
    const pressed = b.getAttribute("aria-pressed") === "true";
    const r = await call("PUT", `/api/streams/${main.id}/reaction`, { reaction: pressed ? "none" : b.dataset.reaction });
    for (const o of document.querySelectorAll("[data-reaction]")) o.setAttribute("aria-pressed", String(o.dataset.reaction === r.reaction));
    $("[data-testid=main-counts]").textContent = countsLine(r.counts);
  });
}
$("[data-testid=share]").addEventListener("click", async () => {
  if (!main) return;
  navigator.clipboard?.writeText(`${location.origin}/live/${main.id}`).catch(() => {});
  await call("POST", `/api/streams/${main.id}/shares`).catch(() => {});
});
$("[data-testid=say]").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = e.target.elements.text;
  if (!main || !input.value.trim()) return;
  try {
    addComment(await call("POST", `/api/streams/${main.id}/comments`, { text: input.value }));
    input.value = "";
  } catch (err) { input.setCustomValidity(err.message); input.reportValidity(); input.setCustomValidity(""); }
});

// --- the sections ---
function fill(list, empty, items, render) {
  list.replaceChildren(...items.map(render));
  empty.hidden = items.length > 0;
}
function liveCard(s) {
  return el("li", { dataset: { id: s.id, testid: "live-card" }, onclick: () => showMain(s) },
    el("span", { className: "live-badge", textContent: "● LIVE" }),
    el("h3", { textContent: s.title }),
    el("p", { className: "meta", textContent: `${s.seller.name} · ${countsLine(s.counts)}` }));
}
function upcomingCard(s) {
  const count = el("span", { textContent: plural(s.counts.reminders, "reminder", "reminders") });
  const remind = el("button", { textContent: "Remind me", dataset: { testid: "remind" } });
  remind.addEventListener("click", async () => {
    const on = remind.getAttribute("aria-pressed") !== "true";
    const r = await call(on ? "PUT" : "DELETE", `/api/streams/${s.id}/reminder`);
    remind.setAttribute("aria-pressed", String(r.reminded));
    remind.textContent = r.reminded ? "Reminder set" : "Remind me";
    count.textContent = plural(r.reminders, "reminder", "reminders");
  });
  return el("li", { dataset: { id: s.id, testid: "upcoming-card" } },
    el("h3", { textContent: s.title }),
    el("p", { className: "meta" }, `${s.seller.name} · `,
      el("span", { dataset: { startsAt: s.scheduled_at, testid: "starts" }, textContent: startsIn(s.scheduled_at) })),
    el("p", { className: "meta", textContent: new Date(s.scheduled_at).toLocaleString() }),
    el("p", { className: "meta" }, count), remind);
}
function recentCard(s) {
  const r = s.replay || {};
  const ready = r.state === "ready";
  return el("li", { dataset: { id: s.id, testid: "recent-card" } },
    el("div", { className: "thumb" },
      el("img", { src: r.thumbnail_url || "", alt: "" }),
      el("span", { className: "badge", textContent: "REPLAY" })),
    el("h3", { textContent: s.title }),
    el("p", { className: "meta", textContent: `${plural(s.counts.unique_viewers, "viewer", "viewers")} · ${plural(s.counts.likes, "like", "likes")} · ${ready ? clock(r.duration_s) : r.state}` }),
    el("button", { textContent: "▶ Play", disabled: !ready, dataset: { testid: "play-replay" }, onclick: () => { showMain(s); scrollTo(0, 0); } }));
}

async function list(section) {
  const r = await fetch(`/api/streams?section=${section}&limit=24`);
  return r.ok ? (await r.json()).streams : [];
}

async function refresh() {
  if (onlyId) {
    const r = await fetch(`/api/streams/${onlyId}`);
    const s = r.ok ? await r.json() : null;
    // The show on this page is no longer live (ended, discarded) or its replay is ready.
    if (main?.id === onlyId && !main.replayLoaded && (r.status === 404 || (s && s.status !== "live"))) {
      showNotLive(s);
    }
    if (!s) {
      $("#live .empty").textContent = "This show is not available.";
      return;
    }
    for (const sec of ["#upcoming", "#recent"]) $(sec).hidden = true;
    $("#live-title").textContent = s.status === "live" ? "Live Now" : s.status === "archived" ? "Replay" : "Coming up";
    if (s.status === "scheduled") {
      $("#live .empty").hidden = true;
      $("[data-testid=minis]").replaceChildren(upcomingCard(s));
      return;
    }
    $("[data-testid=minis]").replaceChildren();
    main = main && main.id === s.id ? main : null;
    await showMain(s);
    return;
  }
  const [live, upcoming, recent] = await Promise.all(["live", "upcoming", "recent"].map(list));
  // A replay the viewer chose plays on whatever else happens in the catalog.
  const replayChosen = main && !main.watchedLive;
  if (!replayChosen && live.length === 0) {
    leaveMain();
    $("#live-title").textContent = "Live Now";
    if (hls) { hls.destroy(); hls = null; }
    $("#live .stage").hidden = true;
    $("#live .empty").hidden = false;
  } else if (!replayChosen && !live.some((s) => s.id === main?.id)) {
    await showMain(live[0]);
  }
  fill($("[data-testid=minis]"), { hidden: false }, live.filter((s) => s.id !== main?.id), liveCard);
  fill($("[data-testid=upcoming]"), $("#upcoming .empty"), upcoming, upcomingCard);
  fill($("[data-testid=recent]"), $("#recent .empty"), recent, recentCard);
}

// "starts in …" counts down while the page stays open.
setInterval(() => {
  for (const e of document.querySelectorAll("[data-starts-at]")) e.textContent = startsIn(e.dataset.startsAt);
}, 30000);

// The catalog changes as shows are scheduled, go live, end or become replays.
let pending = null;
const catalog = new EventSource("/api/events");
// `reset`: this page missed more than the server replays (it slept, say): reload.
for (const kind of ["stream_scheduled", "stream_live", "stream_ended", "stream_archived", "stream_cancelled", "stream_rescheduled", "reset"]) {
  catalog.addEventListener(kind, () => {
    clearTimeout(pending);
    pending = setTimeout(refresh, 150);
  });
}
refresh();
