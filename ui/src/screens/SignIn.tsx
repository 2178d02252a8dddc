import { useState } from "preact/hooks";
import { api, said, type SignedIn } from "../api";

export function SignIn(props: { error?: string; onSignedIn: (s: SignedIn) => void }) {
  const [server, setServer] = useState("");
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(props.error ?? "");

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError("");
    try {
      props.onSignedIn(await api.signIn(server, token));
    } catch (err) {
      setError(said(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="sign-in">
      <form class="card sign-in-card" onSubmit={submit} id="sign-in" noValidate>
        <div class="brand">
          <span class="brand-mark" aria-hidden="true" />
          <span>Feza Live</span>
        </div>
        <h1>Sign in to go live</h1>
        <p class="muted">Your marketplace gives you its address and your seller token.</p>
        <label>
          Marketplace address
          <input
            id="server"
            type="text"
            inputMode="url"
            spellcheck={false}
            placeholder="https://live.example-market.com"
            value={server}
            onInput={(e) => setServer(e.currentTarget.value)}
            required
          />
        </label>
        <label>
          Seller token
          <input
            id="token"
            type="password"
            placeholder="fzs_…"
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            required
            autoComplete="off"
          />
        </label>
        {error && (
          <p class="error" role="alert" id="sign-in-error">
            {error}
          </p>
        )}
        <button class="primary" type="submit" disabled={busy} id="sign-in-button">
          {busy ? "Checking…" : "Sign in"}
        </button>
        <p class="fine">Your token is kept in this computer's keyring, never in a file.</p>
      </form>
    </main>
  );
}
