// The app's commands and events, typed as the Rust side sends them (live-studio's
// studio module and live-core's API types).
import { Channel, invoke } from "@tauri-apps/api/core";

export type StreamStatus = "scheduled" | "live" | "ended" | "archived" | "cancelled";
export type IngestState = "waiting" | "connected" | "reconnecting";

export interface Counts {
  viewers: number;
  peak_viewers: number;
  unique_viewers: number;
  likes: number;
  dislikes: number;
  comments: number;
  shares: number;
  reminders: number;
}

export interface Replay {
  video_url: string | null;
  thumbnail_url: string | null;
  duration_s: number | null;
  state: "uploading" | "processing" | "ready" | "failed";
  reason?: string;
}

export interface Stream {
  id: string;
  seller: { id: string; name: string };
  title: string;
  description: string;
  status: StreamStatus;
  scheduled_at: string | null;
  started_at: string | null;
  ended_at: string | null;
  end_reason: string | null;
  share_url: string;
  playback_url: string | null;
  replay: Replay | null;
  counts: Counts;
  ingest_state?: IngestState;
  overdue?: boolean;
}

export interface SignedIn {
  server: string;
  seller_id: string;
  seller_name: string;
  keyring_note: string | null;
}

export interface Destination {
  id: number;
  url: string;
  state: "connecting" | "live" | "reconnecting" | "stopped";
  attempt: number;
  retry_in_s: number | null;
  bitrate_kbps: number;
  dropped_frames: number;
  behind_ms: number;
  last_error: string | null;
}

export interface LiveView {
  stream_id: string;
  title: string;
  share_url: string;
  status: StreamStatus;
  ingest_state: IngestState | null;
  counts: Counts;
  elapsed_s: number;
  encoder: string;
  fps: number;
  dropped_frames: number;
  skipped_frames: number;
  mic_muted: boolean;
  mic_lost: string | null;
  camera_on: boolean;
  camera_lost: string | null;
  recording_bytes: number;
  recording_minutes_left: number;
  recording_error: string | null;
  destinations: Destination[];
}

export interface Alert {
  kind: string;
  message: string;
}

export interface Comment {
  id: string;
  viewer_id: string;
  viewer_name: string;
  text: string;
  created_at: string;
}

export type ChatEvent = ({ kind: "comment" } & Comment) | { kind: "removed"; id: string };

export interface EndedView {
  stream: Stream;
  saved: boolean;
  ingest_lost: boolean;
  duration_s: number;
  recording: string | null;
  recording_problem: string | null;
}

export interface UploadView {
  stream_id: string;
  sent: number;
  total: number | null;
  rate: number;
  left_s: number | null;
}

export interface DoneView {
  stream_id: string;
  replay: "ready" | "processing" | "queued" | "failed" | "discarded";
  message: string | null;
  share_url: string;
}

export type StudioEvent =
  | ({ kind: "live" } & LiveView)
  | ({ kind: "alert" } & Alert)
  | { kind: "chat"; event: ChatEvent }
  | ({ kind: "ended" } & EndedView)
  | ({ kind: "upload" } & UploadView)
  | ({ kind: "done" } & DoneView)
  | { kind: "failed"; message: string };

export interface NewShow {
  title: string;
  description?: string;
  scheduled_at?: string;
}

export const api = {
  restore: () => invoke<SignedIn | null>("restore"),
  signIn: (server: string, token: string) => invoke<SignedIn>("sign_in", { server, token }),
  signOut: () => invoke<void>("sign_out"),
  myShows: () => invoke<Stream[]>("my_shows"),
  schedule: (show: NewShow) => invoke<Stream>("schedule_show", { show }),
  update: (id: string, change: Partial<NewShow>) => invoke<Stream>("update_show", { id, change }),
  cancel: (id: string) => invoke<Stream>("cancel_show", { id }),
  goLive: (args: { id?: string; title?: string; profile: string }, onEvent: (e: StudioEvent) => void) => {
    const events = new Channel<StudioEvent>();
    events.onmessage = onEvent;
    return invoke<void>("go_live", { args, events });
  },
  mute: (muted: boolean) => invoke<void>("control", { control: { kind: "mic", muted } }),
  camera: (on: boolean) => invoke<void>("control", { control: { kind: "camera", on } }),
  end: (save: boolean) => invoke<void>("control", { control: { kind: "end", save } }),
  sendWaitingReplays: (onEvent: (e: StudioEvent) => void) => {
    const events = new Channel<StudioEvent>();
    events.onmessage = onEvent;
    return invoke<void>("send_waiting_replays", { events });
  },
  removeComment: (show: string, comment: string) => invoke<void>("remove_comment", { show, comment }),
  blockViewer: (show: string, viewer: string) => invoke<void>("block_viewer", { show, viewer }),
};

/// A command's refusal as the window shows it (the app sends sentences).
export function said(e: unknown): string {
  return typeof e === "string" ? e : e instanceof Error ? e.message : String(e);
}
