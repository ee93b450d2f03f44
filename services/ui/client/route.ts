/** Client-side routes on real paths (the server answers every page path with the app). */
import { useEffect, useState } from "preact/hooks";

export function navigate(to: string): void {
  history.pushState(null, "", to);
  dispatchEvent(new PopStateEvent("popstate"));
}

export function useLocation(): URL {
  const [href, setHref] = useState(location.href);
  useEffect(() => {
    const on = () => setHref(location.href);
    addEventListener("popstate", on);
    return () => removeEventListener("popstate", on);
  }, []);
  return new URL(href);
}

/** Replaces query parameters without a new history entry (filters, the selected task). */
export function setQuery(values: Record<string, string | undefined>): void {
  const url = new URL(location.href);
  for (const [k, v] of Object.entries(values)) v === undefined ? url.searchParams.delete(k) : url.searchParams.set(k, v);
  history.replaceState(null, "", url);
  dispatchEvent(new PopStateEvent("popstate"));
}
