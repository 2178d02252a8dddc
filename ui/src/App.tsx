import { useEffect, useState } from "preact/hooks";
import { api, said, type SignedIn, type Stream } from "./api";
import { SignIn } from "./screens/SignIn";
import { Shows } from "./screens/Shows";
import { Live, type GoingLive } from "./screens/Live";

type Screen =
  | { name: "starting" }
  | { name: "sign-in"; error?: string }
  | { name: "shows" }
  | { name: "live"; going: GoingLive };

export function App() {
  const [screen, setScreen] = useState<Screen>({ name: "starting" });
  const [seller, setSeller] = useState<SignedIn | null>(null);

  useEffect(() => {
    api
      .restore()
      .then((s) => {
        setSeller(s);
        setScreen(s ? { name: "shows" } : { name: "sign-in" });
      })
      .catch((e) => setScreen({ name: "sign-in", error: said(e) }));
  }, []);

  const signOut = async () => {
    await api.signOut();
    setSeller(null);
    setScreen({ name: "sign-in" });
  };

  switch (screen.name) {
    case "starting":
      return <main class="starting" aria-busy="true" />;
    case "sign-in":
      return (
        <SignIn
          error={screen.error}
          onSignedIn={(s) => {
            setSeller(s);
            setScreen({ name: "shows" });
          }}
        />
      );
    case "shows":
      return (
        <Shows
          seller={seller!}
          onSignOut={signOut}
          onGoLive={(show: Stream | null, title: string, profile: string) =>
            setScreen({ name: "live", going: { show, title, profile } })
          }
        />
      );
    case "live":
      return <Live going={screen.going} onClose={() => setScreen({ name: "shows" })} />;
  }
}
