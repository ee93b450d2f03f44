/** The screen a 401 brings up: paste the API token, with where to find it. */
import { useState } from "preact/hooks";
import { setToken } from "./auth.ts";

export function TokenScreen({ why }: { why: string }) {
  const [text, setText] = useState("");
  const submit = (e: Event) => {
    e.preventDefault();
    if (text.trim()) setToken(text);
  };
  return (
    <section class="token-screen">
      <h1>API token</h1>
      <p class="why">{why}</p>
      <p class="muted">
        It was printed as a link (<code>http://…/#token=…</code>) when this UI first started, and is kept in the file{" "}
        <code>api-token</code> in its data dir (<code>cat .mapflow/api-token</code>), unless the UI was given one in <code>MAPFLOW_API_TOKEN</code>.
      </p>
      <form onSubmit={submit}>
        <input type="password" name="token" autocomplete="off" placeholder="paste the token" value={text} onInput={(e) => setText(e.currentTarget.value)} />{" "}
        <button class="primary" type="submit" disabled={!text.trim()}>Use token</button>
      </form>
    </section>
  );
}
