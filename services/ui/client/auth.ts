/**
 * The API token in the browser. It arrives once in the address's fragment
 * (`#token=…`: browsers send a fragment neither to the server nor in a
 * Referer), leaves the address bar at once, and is kept in localStorage, so
 * new tabs and later visits have it, as Jupyter's and Grafana's logins do.
 * A 401 on any call forgets it and asks for it.
 */
import { useEffect, useState } from "preact/hooks";

const KEY = "mapflow.apiToken";

function stored(): string | undefined {
  try {
    return localStorage.getItem(KEY) ?? undefined;
  } catch {
    return undefined; // storage turned off: the token lives as long as the page
  }
}

let token = stored();
/** Why the token screen shows, or undefined while calls go through. */
let asking: string | undefined;
const listeners = new Set<() => void>();
const changed = () => listeners.forEach((l) => l());

export const currentToken = (): string | undefined => token;

/** The header every call sends, when there is a token. */
export function authHeaders(sent: string | undefined): Record<string, string> {
  return sent ? { authorization: `Bearer ${sent}` } : {};
}

export function setToken(value: string): void {
  token = value.trim();
  try {
    localStorage.setItem(KEY, token);
  } catch {
    // kept in memory only
  }
  asking = undefined;
  changed();
}

/** Moves `#token=…` from the address into storage, replacing the history entry so Back does not bring it again. */
export function takeTokenFromAddress(): void {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const given = fragment.get("token");
  if (!given) return;
  fragment.delete("token");
  const rest = fragment.toString();
  history.replaceState(history.state, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  setToken(given);
}

/**
 * The server refused a call made with `sent`. A refusal of a token already
 * replaced (a call in flight while one was pasted) changes nothing.
 */
export function refused(sent: string | undefined): void {
  if (sent !== token) return;
  asking = sent ? "This browser's token was refused (the UI's token may have changed)." : "This UI needs its API token.";
  token = undefined;
  try {
    localStorage.removeItem(KEY);
  } catch {
    // nothing was stored
  }
  changed();
}

export function signOut(): void {
  refused(token);
  asking = "Signed out: this browser no longer holds the token.";
  changed();
}

/** Resolves when a token is set (the live stream waits here after a 401). */
export function tokenSet(): Promise<void> {
  return new Promise((resolve) => {
    const once = () => {
      if (!token) return;
      listeners.delete(once);
      resolve();
    };
    listeners.add(once);
  });
}

/** Why the token screen shows, re-rendering as that changes. */
export function useAsking(): string | undefined {
  const [, rerender] = useState(0);
  useEffect(() => {
    const on = () => rerender((n) => n + 1);
    listeners.add(on);
    return () => void listeners.delete(on);
  }, []);
  return asking;
}

export const hasToken = (): boolean => token !== undefined;
