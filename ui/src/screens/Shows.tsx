import { useEffect, useState } from "preact/hooks";
import { api, said, type DoneView, type SignedIn, type Stream, type UploadView } from "../api";

type Sending = ({ kind: "upload" } & UploadView) | ({ kind: "done" } & DoneView);
import { counted, fromLocalInput, when } from "../format";
import { checkShow, DESCRIPTION_MAX, groupShows, showBadge, TITLE_MAX, uploadLine, type ShowForm } from "../view";

const PROFILES = [
  { id: "1080p30", label: "1080p · sharpest (needs a fast computer and upload)" },
  { id: "720p30", label: "720p · recommended" },
  { id: "480p30", label: "480p · for a slow connection" },
  { id: "360p30", label: "360p · for a very slow connection" },
];

export function Shows(props: {
  seller: SignedIn;
  onSignOut: () => void;
  onGoLive: (show: Stream | null, title: string, profile: string) => void;
}) {
  const [shows, setShows] = useState<Stream[] | null>(null);
  const [error, setError] = useState("");
  const [profile, setProfile] = useState("720p30");

  const refresh = () =>
    api
      .myShows()
      .then((s) => {
        setShows(s);
        setError("");
      })
      .catch((e) => setError(said(e)));
  // Replays an earlier run left unsent go on now, their progress shown here.
  const [sending, setSending] = useState<Record<string, Sending>>({});
  useEffect(() => {
    refresh();
    const timer = setInterval(refresh, 5000);
    api
      .sendWaitingReplays((e) => {
        if (e.kind === "upload" || e.kind === "done") {
          setSending((all) => ({ ...all, [e.stream_id]: e }));
          if (e.kind === "done") refresh();
        }
      })
      .catch((e) => setError(said(e)));
    return () => clearInterval(timer);
  }, []);

  const groups = groupShows(shows ?? []);
  return (
    <main class="shows">
      <header class="bar">
        <div class="brand">
          <span class="brand-mark" aria-hidden="true" />
          <span>Feza Live</span>
        </div>
        <div class="who">
          <span id="seller-name">{props.seller.seller_name}</span>
          <span class="muted">{props.seller.server}</span>
          <button class="quiet" onClick={props.onSignOut} id="sign-out">
            Sign out
          </button>
        </div>
      </header>
      {props.seller.keyring_note && <p class="notice warn">{props.seller.keyring_note}</p>}
      {error && (
        <p class="notice bad" role="alert">
          {error}
        </p>
      )}
      <div class="columns">
        <section class="list">
          <h2>My shows</h2>
          {shows === null && !error && <p class="muted">Loading your shows…</p>}
          {shows !== null && shows.length === 0 && (
            <p class="empty">No shows yet. Schedule one, or go live now: viewers with a reminder are told.</p>
          )}
          <ShowGroup title="On air" shows={groups.onAir} onGoLive={(s) => props.onGoLive(s, s.title, profile)} />
          <ShowGroup
            title="Upcoming"
            shows={groups.upcoming}
            onGoLive={(s) => props.onGoLive(s, s.title, profile)}
            onCancel={async (s) => {
              try {
                await api.cancel(s.id);
                refresh();
              } catch (e) {
                setError(said(e));
              }
            }}
          />
          <ShowGroup title="Past" shows={groups.past} sending={sending} />
        </section>
        <aside class="side">
          <Schedule
            onScheduled={refresh}
            onGoLiveNow={(title) => props.onGoLive(null, title, profile)}
          />
          <div class="card">
            <h3>Picture quality</h3>
            <select id="profile" value={profile} onChange={(e) => setProfile(e.currentTarget.value)}>
              {PROFILES.map((p) => (
                <option value={p.id}>{p.label}</option>
              ))}
            </select>
          </div>
        </aside>
      </div>
    </main>
  );
}

function ShowGroup(props: {
  title: string;
  shows: Stream[];
  sending?: Record<string, Sending>;
  onGoLive?: (s: Stream) => void;
  onCancel?: (s: Stream) => void;
}) {
  if (props.shows.length === 0) return null;
  return (
    <div class="group">
      <h3>{props.title}</h3>
      <ul>
        {props.shows.map((s) => {
          const badge = showBadge(s);
          const sent = props.sending?.[s.id];
          const at = s.scheduled_at ?? s.started_at;
          return (
            <li class="show" data-id={s.id}>
              <div class="show-main">
                <span class={`badge ${badge.tone}`}>{badge.label}</span>
                <strong class="show-title">{s.title}</strong>
                <span class="muted">
                  {at ? when(at) : ""}
                  {s.counts.reminders > 0 ? ` · ${counted(s.counts.reminders, "reminder")}` : ""}
                  {s.status === "archived" || s.status === "ended" ? ` · ${counted(s.counts.peak_viewers, "viewer")} at most` : ""}
                </span>
                {sent?.kind === "upload" && <span class="sending">Sending the replay: {uploadLine(sent).text}</span>}
                {sent?.kind === "done" && sent.replay === "failed" && (
                  <span class="field-error">The replay could not be sent: {sent.message}</span>
                )}
              </div>
              <div class="show-actions">
                {props.onCancel && (
                  <button class="quiet" onClick={() => props.onCancel!(s)}>
                    Cancel
                  </button>
                )}
                {props.onGoLive && (
                  <button class="live-button" onClick={() => props.onGoLive!(s)}>
                    {s.status === "live" ? "Continue" : "Go live"}
                  </button>
                )}
              </div>
            </li>
          );
        })}
      </ul>
    </div>
  );
}

function Schedule(props: { onScheduled: () => void; onGoLiveNow: (title: string) => void }) {
  const [form, setForm] = useState<ShowForm>({ title: "", description: "", when: "" });
  const [touched, setTouched] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const errors = checkShow(form);
  const shown = touched ? errors : {};
  const valid = Object.keys(errors).length === 0;

  const schedule = async (e: Event) => {
    e.preventDefault();
    setTouched(true);
    if (!valid) return;
    setBusy(true);
    try {
      const at = form.when ? fromLocalInput(form.when) : null;
      await api.schedule({
        title: form.title.trim(),
        description: form.description || undefined,
        scheduled_at: at ? at.toISOString() : undefined,
      });
      setForm({ title: "", description: "", when: "" });
      setTouched(false);
      setError("");
      props.onScheduled();
    } catch (err) {
      setError(said(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card" onSubmit={schedule} id="schedule" noValidate>
      <h3>New show</h3>
      <label>
        Title
        <input
          id="show-title"
          value={form.title}
          maxLength={TITLE_MAX + 40}
          onInput={(e) => setForm({ ...form, title: e.currentTarget.value })}
          onBlur={() => setTouched(true)}
          placeholder="Spring sale: linen dresses"
        />
        {shown.title && <span class="field-error">{shown.title}</span>}
      </label>
      <label>
        <span>
          Description <span class="muted">(optional)</span>
        </span>
        <textarea
          id="show-description"
          rows={3}
          value={form.description}
          onInput={(e) => setForm({ ...form, description: e.currentTarget.value })}
        />
        <span class="counter">
          {form.description.length} / {DESCRIPTION_MAX}
        </span>
        {shown.description && <span class="field-error">{shown.description}</span>}
      </label>
      <label>
        <span>
          Starts at <span class="muted">(your local time; empty: now)</span>
        </span>
        <input
          id="show-when"
          type="datetime-local"
          value={form.when}
          onInput={(e) => {
            setForm({ ...form, when: e.currentTarget.value });
            setTouched(true);
          }}
        />
        {shown.when && <span class="field-error">{shown.when}</span>}
      </label>
      {error && (
        <p class="error" role="alert" id="schedule-error">
          {error}
        </p>
      )}
      <div class="row">
        <button class="primary" type="submit" disabled={busy} id="schedule-button">
          Schedule
        </button>
        <button
          type="button"
          class="live-button"
          id="go-live-now"
          disabled={busy}
          onClick={() => {
            setTouched(true);
            if (!errors.title && !errors.description) props.onGoLiveNow(form.title.trim());
          }}
        >
          Go live now
        </button>
      </div>
    </form>
  );
}
