import { describe, expect, it } from "vitest";
import { bytes, clock, counted, fromLocalInput, relative, timeLeft, toLocalInput, when } from "./format";
import { checkShow, destinationLine, groupShows, liveState, showBadge, uploadLine } from "./view";
import type { Destination, LiveView, Stream } from "./api";

const now = new Date(2026, 11, 7, 14, 0, 0);

function show(over: Partial<Stream>): Stream {
  return {
    id: "s1",
    seller: { id: "m", name: "Maria" },
    title: "Spring sale",
    description: "",
    status: "scheduled",
    scheduled_at: null,
    started_at: null,
    ended_at: null,
    end_reason: null,
    share_url: "https://x/live/s1",
    playback_url: null,
    replay: null,
    counts: { viewers: 0, peak_viewers: 0, unique_viewers: 0, likes: 0, dislikes: 0, comments: 0, shares: 0, reminders: 0 },
    ...over,
  };
}

describe("figures", () => {
  it("reads times, sizes and what is left", () => {
    expect(clock(5)).toBe("0:05");
    expect(clock(754)).toBe("12:34");
    expect(clock(3723)).toBe("1:02:03");
    expect(bytes(812)).toBe("812 B");
    expect(bytes(640_000)).toBe("640 KB");
    expect(bytes(1_250_000)).toBe("1.3 MB");
    expect(bytes(412_000_000)).toBe("412 MB");
    expect(bytes(2_410_000_000)).toBe("2.41 GB");
    expect(timeLeft(12)).toBe("12 s left");
    expect(timeLeft(250)).toBe("about 4 min left");
    expect(timeLeft(4800)).toBe("about 1 h 20 min left");
    expect(counted(1, "like")).toBe("1 like");
    expect(counted(1234, "viewer")).toBe("1,234 viewers");
  });

  it("says moments in local time, and how far they are", () => {
    expect(when(new Date(2026, 11, 8, 9, 5).toISOString(), now)).toBe("Tue 8 Dec, 09:05");
    expect(when(new Date(2027, 0, 2, 18, 30).toISOString(), now)).toBe("Sat 2 Jan 2027, 18:30");
    expect(relative(new Date(2026, 11, 7, 14, 5).toISOString(), now)).toBe("in 5 min");
    expect(relative(new Date(2026, 11, 7, 16, 0).toISOString(), now)).toBe("in 2 h");
    expect(relative(new Date(2026, 11, 7, 13, 48).toISOString(), now)).toBe("12 min ago");
  });

  it("takes a date picker's local time as the instant it means", () => {
    const d = new Date(2026, 11, 24, 18, 30);
    expect(toLocalInput(d)).toBe("2026-12-24T18:30");
    expect(fromLocalInput("2026-12-24T18:30")!.getTime()).toBe(d.getTime());
    expect(fromLocalInput("tomorrow")).toBeNull();
  });
});

describe("a new show's form", () => {
  const ok = { title: "Spring sale", description: "", when: "" };
  it("holds the server's rules as the seller types", () => {
    expect(checkShow(ok, now)).toEqual({});
    expect(checkShow({ ...ok, title: "   " }, now).title).toMatch(/title/);
    expect(checkShow({ ...ok, title: "x".repeat(121) }, now).title).toMatch(/120 characters \(121 now\)/);
    expect(checkShow({ ...ok, description: "d".repeat(2001) }, now).description).toMatch(/2000/);
    expect(checkShow({ ...ok, when: "2026-12-07T13:00" }, now).when).toMatch(/passed/);
    expect(checkShow({ ...ok, when: "2028-01-01T10:00" }, now).when).toMatch(/year/);
    expect(checkShow({ ...ok, when: "2026-12-07T15:00" }, now)).toEqual({});
  });
});

describe("My shows", () => {
  it("groups and badges shows as the seller reads them", () => {
    const shows = [
      show({ id: "a", status: "scheduled", scheduled_at: new Date(2026, 11, 9).toISOString() }),
      show({ id: "b", status: "scheduled", scheduled_at: new Date(2026, 11, 8).toISOString() }),
      show({ id: "c", status: "live" }),
      show({ id: "d", status: "archived", ended_at: new Date(2026, 11, 1).toISOString(), replay: { video_url: null, thumbnail_url: null, duration_s: null, state: "ready" } }),
      show({ id: "e", status: "ended", end_reason: "ingest_lost", ended_at: new Date(2026, 11, 5).toISOString() }),
    ];
    const g = groupShows(shows);
    expect(g.onAir.map((s) => s.id)).toEqual(["c"]);
    expect(g.upcoming.map((s) => s.id)).toEqual(["b", "a"]);
    expect(g.past.map((s) => s.id)).toEqual(["e", "d"]);
    expect(showBadge(shows[3], now)).toEqual({ label: "Replay ready", tone: "good" });
    expect(showBadge(shows[4], now).label).toBe("Ended: connection lost");
    expect(showBadge(show({ status: "scheduled", overdue: true }), now).label).toBe("Overdue");
    expect(showBadge(show({ status: "live", ingest_state: "reconnecting" }), now).tone).toBe("warn");
  });
});

describe("the live screen", () => {
  const dest = (over: Partial<Destination>): Destination => ({
    id: 0,
    url: "rtmp://ingest/live/***",
    state: "live",
    attempt: 0,
    retry_in_s: null,
    bitrate_kbps: 2480,
    dropped_frames: 0,
    behind_ms: 0,
    last_error: null,
    ...over,
  });
  it("says each destination's state, with the countdown while reconnecting", () => {
    expect(destinationLine(dest({}))).toEqual({ label: "Marketplace: live · 2,480 kb/s", tone: "good" });
    expect(destinationLine(dest({ state: "reconnecting", attempt: 2, retry_in_s: 3, last_error: "connection refused" }))).toEqual({
      label: "Marketplace: reconnecting in 3 s, attempt 2 (connection refused)",
      tone: "warn",
    });
    expect(destinationLine(dest({ id: 1, url: "srt://b:9000", state: "stopped", last_error: "refused: bad key" })).label).toBe(
      "srt://b:9000: stopped — refused: bad key",
    );
  });
  it("says the show's state as the server sees it", () => {
    const v = { status: "live", ingest_state: "connected" } as LiveView;
    expect(liveState(v).label).toBe("Live");
    expect(liveState({ ...v, ingest_state: "reconnecting" }).label).toBe("Reconnecting");
    expect(liveState({ ...v, status: "scheduled", ingest_state: "waiting" }).label).toBe("Going live…");
  });
  it("tells the upload's progress, rate and time left", () => {
    expect(uploadLine({ stream_id: "s", sent: 412_000_000, total: 1_200_000_000, rate: 5_100_000, left_s: 155 })).toEqual({
      percent: 34,
      text: "412 MB of 1.20 GB (34 %) · 5.1 MB/s · about 3 min left",
    });
    expect(uploadLine({ stream_id: "s", sent: 1_000, total: null, rate: 0, left_s: null }).text).toBe("1 KB sent");
  });
});
