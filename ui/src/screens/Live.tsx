import { useEffect, useRef, useState } from "preact/hooks";
import { api, said, type Alert, type Comment, type DoneView, type EndedView, type LiveView, type Stream, type UploadView } from "../api";
import { bytes, clock, count, counted } from "../format";
import { destinationLine, liveState, uploadLine } from "../view";

export interface GoingLive {
  /** A show of the seller's; none: a new one. */
  show: Stream | null;
  title: string;
  profile: string;
}

export function Live(props: { going: GoingLive; onClose: () => void }) {
  const [view, setView] = useState<LiveView | null>(null);
  const [alerts, setAlerts] = useState<Alert[]>([]);
  const [ended, setEnded] = useState<EndedView | null>(null);
  const [upload, setUpload] = useState<UploadView | null>(null);
  const [done, setDone] = useState<DoneView | null>(null);
  const [failed, setFailed] = useState("");
  const [chat, setChat] = useState<Comment[]>([]);
  const [asking, setAsking] = useState<"end" | "discard" | null>(null);
  const [ending, setEnding] = useState(false);
  const started = useRef(false);

  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const { show, title, profile } = props.going;
    api
      .goLive({ id: show?.id, title: show ? undefined : title, profile }, (e) => {
        switch (e.kind) {
          case "live":
            setView(e);
            break;
          case "alert":
            setAlerts((a) => [...a.slice(-4), { kind: e.kind, message: e.message }]);
            break;
          case "chat": {
            const c = e.event;
            if (c.kind === "comment") setChat((all) => [...all.slice(-199), c]);
            else setChat((all) => all.filter((x) => x.id !== c.id));
            break;
          }
          case "ended":
            setEnded(e);
            break;
          case "upload":
            setUpload(e);
            break;
          case "done":
            setDone(e);
            break;
          case "failed":
            setFailed(e.message);
            break;
        }
      })
      .catch((e) => setFailed(said(e)));
  }, []);

  // Shortcuts: Ctrl+Shift+M mute, Ctrl+Shift+K camera, Ctrl+Shift+E end the show.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (!e.ctrlKey || !e.shiftKey || !view) return;
      const key = e.key.toLowerCase();
      if (key === "m") api.mute(!view.mic_muted);
      else if (key === "k") api.camera(!view.camera_on);
      else if (key === "e") setAsking("end");
      else return;
      e.preventDefault();
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [view]);

  const end = async (save: boolean) => {
    setAsking(null);
    setEnding(true);
    try {
      await api.end(save);
    } catch (e) {
      setFailed(said(e));
    }
  };

  if (failed && !ended)
    return (
      <main class="live">
        <div class="card center">
          <h1>The show could not go on</h1>
          <p class="error" role="alert" id="live-error">
            {failed}
          </p>
          <button class="primary" onClick={props.onClose}>
            Back to my shows
          </button>
        </div>
      </main>
    );

  if (ended) return <After ended={ended} upload={upload} done={done} failed={failed} onClose={props.onClose} />;

  const state = view ? liveState(view) : { label: "Starting…", tone: "calm", detail: "Opening the camera and the connection." };
  return (
    <main class="live">
      <header class="bar">
        <div class="on-air">
          <span class={`state-dot ${state.tone}`} />
          <strong id="live-state">{state.label}</strong>
          <span class="elapsed" id="elapsed">
            {view ? clock(view.elapsed_s) : "0:00"}
          </span>
          <span class="title">{view?.title ?? props.going.title}</span>
        </div>
        <div class="row">
          {view && (
            <button class="quiet" onClick={() => navigator.clipboard?.writeText(view.share_url)} title={view.share_url}>
              Copy link
            </button>
          )}
          <button class="end-button" id="end" disabled={!view || ending} onClick={() => setAsking("end")} title="Ctrl+Shift+E">
            {ending ? "Ending…" : "End show"}
          </button>
        </div>
      </header>
      <p class="muted detail">{state.detail}</p>
      <div class="alerts" id="alerts">
        {alerts.map((a) => (
          <p class={`notice ${a.kind === "server_back" ? "good" : "warn"}`} data-kind={a.kind}>
            {a.message}
          </p>
        ))}
      </div>
      <div class="live-grid">
        <section class="card counts" id="counts">
          <Figure label="Watching" value={view?.counts.viewers} id="count-viewers" />
          <Figure label="Peak" value={view?.counts.peak_viewers} />
          <Figure label="Likes" value={view?.counts.likes} id="count-likes" />
          <Figure label="Dislikes" value={view?.counts.dislikes} />
          <Figure label="Comments" value={view?.counts.comments} id="count-comments" />
          <Figure label="Shares" value={view?.counts.shares} />
          <Figure label="Reminders" value={view?.counts.reminders} />
        </section>
        <section class="card controls">
          <h3>You</h3>
          <div class="row">
            <button
              id="mute"
              class={view?.mic_muted ? "toggle on" : "toggle"}
              disabled={!view}
              onClick={() => view && api.mute(!view.mic_muted)}
              title="Ctrl+Shift+M"
            >
              {view?.mic_muted ? "Unmute" : "Mute"}
            </button>
            <button
              id="camera"
              class={view && !view.camera_on ? "toggle on" : "toggle"}
              disabled={!view}
              onClick={() => view && api.camera(!view.camera_on)}
              title="Ctrl+Shift+K"
            >
              {view && !view.camera_on ? "Camera on" : "Camera off"}
            </button>
          </div>
          {view?.mic_lost && <p class="notice warn">{view.mic_lost}</p>}
          {view?.camera_lost && <p class="notice warn">{view.camera_lost}</p>}
        </section>
        <Chat
          show={view?.stream_id}
          comments={chat}
          onError={(message) => setAlerts((a) => [...a.slice(-4), { kind: "control_refused", message }])}
        />
        <section class="card destinations" id="destinations">
          <h3>Destinations</h3>
          {(view?.destinations ?? []).map((d) => {
            const line = destinationLine(d);
            return (
              <p class={`destination ${line.tone}`} data-state={d.state}>
                {line.label}
              </p>
            );
          })}
        </section>
        <section class="card machine">
          <h3>This computer</h3>
          {view && (
            <dl>
              <dt>Encoder</dt>
              <dd>
                {view.encoder} · {view.fps} fps
              </dd>
              <dt>Frames skipped</dt>
              <dd>{count(view.skipped_frames + view.dropped_frames)}</dd>
              <dt>Recording</dt>
              <dd id="recording">
                {view.recording_error ? view.recording_error : `${bytes(view.recording_bytes)} · ${count(view.recording_minutes_left)} min of disk left`}
              </dd>
            </dl>
          )}
        </section>
      </div>
      {asking && (
        <div class="dialog-backdrop">
          <div class="card dialog" role="dialog" aria-modal="true" id="end-dialog">
            {asking === "end" ? (
              <>
                <h2>End the show?</h2>
                <p>Save it as a replay viewers can watch later, or discard it.</p>
                <div class="row">
                  <button class="primary" id="end-save" onClick={() => end(true)}>
                    Save replay
                  </button>
                  <button class="danger" id="end-discard" onClick={() => setAsking("discard")}>
                    Discard
                  </button>
                  <button class="quiet" id="keep-streaming" onClick={() => setAsking(null)}>
                    Keep streaming
                  </button>
                </div>
              </>
            ) : (
              <>
                <h2>Discard this show?</h2>
                <p>Its recording is deleted from this computer and the show leaves the marketplace. This cannot be undone.</p>
                <div class="row">
                  <button class="danger" id="confirm-discard" onClick={() => end(false)}>
                    Discard and delete
                  </button>
                  <button class="quiet" onClick={() => setAsking("end")}>
                    Back
                  </button>
                </div>
              </>
            )}
          </div>
        </div>
      )}
    </main>
  );
}

function Chat(props: { show: string | undefined; comments: Comment[]; onError: (e: string) => void }) {
  const list = useRef<HTMLOListElement>(null);
  useEffect(() => {
    list.current?.scrollTo({ top: list.current.scrollHeight });
  }, [props.comments.length]);
  const act = (work: Promise<void>) => work.catch((e) => props.onError(said(e)));
  return (
    <section class="card chat" id="chat">
      <h3>Chat</h3>
      {props.comments.length === 0 ? (
        <p class="muted">Comments appear here as viewers write them.</p>
      ) : (
        <ol ref={list}>
          {props.comments.map((c) => (
            <li class="comment" data-id={c.id}>
              <div>
                <strong>{c.viewer_name}</strong> <span class="comment-text">{c.text}</span>
              </div>
              <div class="comment-actions">
                <button class="link" title="Remove this comment for everyone" onClick={() => props.show && act(api.removeComment(props.show, c.id))}>
                  Remove
                </button>
                <button class="link" title="This viewer can no longer comment or react on your shows" onClick={() => props.show && act(api.blockViewer(props.show, c.viewer_id))}>
                  Block
                </button>
              </div>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Figure(props: { label: string; value: number | undefined; id?: string }) {
  return (
    <div class="figure">
      <span class="value" id={props.id}>
        {props.value === undefined ? "–" : count(props.value)}
      </span>
      <span class="label">{props.label}</span>
    </div>
  );
}

function After(props: {
  ended: EndedView;
  upload: UploadView | null;
  done: DoneView | null;
  failed: string;
  onClose: () => void;
}) {
  const { ended, upload, done } = props;
  const line = upload ? uploadLine(upload) : null;
  const percent = done?.replay === "ready" || done?.replay === "processing" ? 100 : line?.percent ?? 0;
  return (
    <main class="live">
      <div class="card center after" id="after">
        <h1>{ended.saved ? "Show saved" : "Show ended"}</h1>
        {ended.ingest_lost && (
          <p class="notice warn">
            The marketplace ended the show because it stopped receiving your picture for too long.
          </p>
        )}
        <p class="muted">
          {ended.stream.title} · {clock(ended.duration_s)} · {counted(ended.stream.counts.peak_viewers, "viewer")} at most
          · {counted(ended.stream.counts.likes, "like")}
        </p>
        {ended.recording_problem && <p class="notice warn">{ended.recording_problem}</p>}
        {ended.saved && (
          <div class="upload" id="upload">
            <div class="progress" role="progressbar" aria-valuenow={percent} aria-valuemin={0} aria-valuemax={100}>
              <div class="progress-fill" style={{ width: `${percent}%` }} />
            </div>
            <p id="upload-state">
              {done
                ? doneText(done)
                : line
                  ? `Sending the replay: ${line.text}`
                  : "Preparing the replay…"}
            </p>
          </div>
        )}
        {!ended.saved && done?.replay === "discarded" && <p id="upload-state">The show and its recording are deleted.</p>}
        {props.failed && (
          <p class="error" role="alert">
            {props.failed}
          </p>
        )}
        <button class="primary" onClick={props.onClose} id="back-to-shows">
          Back to my shows
        </button>
      </div>
    </main>
  );
}

function doneText(d: DoneView): string {
  switch (d.replay) {
    case "ready":
      return "The replay is ready: 100 % sent.";
    case "processing":
      return "100 % sent: the marketplace is preparing the replay.";
    case "queued":
      return `The replay is sent once the marketplace can be reached${d.message ? ` (${d.message})` : ""}.`;
    case "failed":
      return `The replay could not be sent: ${d.message ?? "unknown reason"}. The recording stays on this computer.`;
    case "discarded":
      return "The show and its recording are deleted.";
  }
}
