// What the screens show, from what the app knows: kept apart from the screens so it
// can be tested.
import type { Destination, LiveView, Stream, UploadView } from "./api";
import { bytes, count, fromLocalInput, rate, relative, timeLeft } from "./format";

export type Tone = "live" | "warn" | "bad" | "calm" | "good";

/** The server's rules for a show, checked as the seller types. */
export const TITLE_MAX = 120;
export const DESCRIPTION_MAX = 2000;

export interface ShowForm {
  title: string;
  description: string;
  /** A datetime-local value; empty: now. */
  when: string;
}

export type FormErrors = Partial<Record<keyof ShowForm, string>>;

export function checkShow(form: ShowForm, now: Date = new Date()): FormErrors {
  const errors: FormErrors = {};
  const title = form.title.trim();
  if (!title) errors.title = "Give the show a title.";
  else if (title.length > TITLE_MAX) errors.title = `At most ${TITLE_MAX} characters (${title.length} now).`;
  if (form.description.length > DESCRIPTION_MAX)
    errors.description = `At most ${DESCRIPTION_MAX} characters (${form.description.length} now).`;
  if (form.when) {
    const at = fromLocalInput(form.when);
    const yearAhead = new Date(now.getTime() + 365 * 86400 * 1000);
    if (!at) errors.when = "Pick a date and a time.";
    else if (at.getTime() < now.getTime() - 60_000) errors.when = "That moment has passed: pick one ahead.";
    else if (at.getTime() > yearAhead.getTime()) errors.when = "Schedule at most a year ahead.";
  }
  return errors;
}

/** The seller's shows, as My shows lists them. */
export function groupShows(shows: Stream[]): { onAir: Stream[]; upcoming: Stream[]; past: Stream[] } {
  const at = (s: Stream) => new Date(s.scheduled_at ?? s.started_at ?? s.ended_at ?? 0).getTime();
  const ended = (s: Stream) => new Date(s.ended_at ?? s.started_at ?? s.scheduled_at ?? 0).getTime();
  return {
    onAir: shows.filter((s) => s.status === "live"),
    upcoming: shows.filter((s) => s.status === "scheduled").sort((a, b) => at(a) - at(b)),
    past: shows
      .filter((s) => s.status === "ended" || s.status === "archived" || s.status === "cancelled")
      .sort((a, b) => ended(b) - ended(a)),
  };
}

/** A show's badge in My shows. */
export function showBadge(s: Stream, now: Date = new Date()): { label: string; tone: Tone } {
  switch (s.status) {
    case "live":
      return s.ingest_state === "reconnecting"
        ? { label: "Live · reconnecting", tone: "warn" }
        : { label: "Live", tone: "live" };
    case "scheduled":
      if (s.overdue) return { label: "Overdue", tone: "warn" };
      return { label: s.scheduled_at ? `Starts ${relative(s.scheduled_at, now)}` : "Scheduled", tone: "calm" };
    case "archived":
      switch (s.replay?.state) {
        case "ready":
          return { label: "Replay ready", tone: "good" };
        case "failed":
          return { label: "Replay failed", tone: "bad" };
        case "processing":
          return { label: "Replay processing", tone: "calm" };
        default:
          return { label: "Replay uploading", tone: "calm" };
      }
    case "ended":
      return s.end_reason === "ingest_lost"
        ? { label: "Ended: connection lost", tone: "warn" }
        : { label: "Ended", tone: "calm" };
    case "cancelled":
      return { label: "Cancelled", tone: "calm" };
  }
}

/** The show's state as the server sees it, on the live screen. */
export function liveState(v: LiveView): { label: string; tone: Tone; detail: string } {
  if (v.status === "live" && v.ingest_state === "reconnecting")
    return {
      label: "Reconnecting",
      tone: "warn",
      detail: "Viewers see the show paused; the server keeps it live while the broadcaster reconnects.",
    };
  if (v.status === "live") return { label: "Live", tone: "live", detail: "Viewers see you now." };
  if (v.status === "scheduled")
    return { label: "Going live…", tone: "calm", detail: "Waiting for the marketplace to receive the picture." };
  return { label: "Ended", tone: "calm", detail: "The show has ended on the server." };
}

/** One destination's line on the live screen. */
export function destinationLine(d: Destination): { label: string; tone: Tone } {
  const name = d.id === 0 ? "Marketplace" : d.url;
  switch (d.state) {
    case "live": {
      const dropped = d.dropped_frames > 0 ? ` · ${count(d.dropped_frames)} frames dropped` : "";
      return { label: `${name}: live · ${count(d.bitrate_kbps)} kb/s${dropped}`, tone: "good" };
    }
    case "connecting":
      return { label: `${name}: connecting…`, tone: "calm" };
    case "reconnecting": {
      const why = d.last_error ? ` (${d.last_error})` : "";
      const wait = d.retry_in_s != null ? `reconnecting in ${d.retry_in_s} s` : "reconnecting";
      return { label: `${name}: ${wait}, attempt ${d.attempt}${why}`, tone: "warn" };
    }
    case "stopped":
      return { label: `${name}: stopped${d.last_error ? ` — ${d.last_error}` : ""}`, tone: "bad" };
  }
}

/** The replay's upload, in words. */
export function uploadLine(u: UploadView): { percent: number | null; text: string } {
  const percent = u.total ? Math.min(100, Math.floor((u.sent / u.total) * 100)) : null;
  const parts = [u.total ? `${bytes(u.sent)} of ${bytes(u.total)} (${percent} %)` : `${bytes(u.sent)} sent`];
  if (u.rate > 0) parts.push(rate(u.rate));
  if (u.left_s != null && percent !== 100) parts.push(timeLeft(u.left_s));
  return { percent, text: parts.join(" · ") };
}
