/**
 * The graph view: tasks as boxes left to right (laid out by dagre), data
 * edges solid and `after` edges dashed; a mapped task reads `add [ ]` until
 * it is expanded and `add [6]` after, with a bar of its instances' states.
 * A task group is one box until it is opened.
 */
import dagre from "@dagrejs/dagre";
import { useMemo, useState } from "preact/hooks";
import type { DagSpec, Mapping, ValueSource } from "../../../libs/core/spec.ts";
import { colourOf, countsText, sortedCounts } from "./states.ts";

/** What the graph shows of a task in a run (absent before any run). */
export type TaskView = { state: string; mapped: boolean; mapCount: number | null; counts: Record<string, number> };

const BOX = { width: 170, height: 54 };

function sourcesOf(source: ValueSource, out: Set<string>): void {
  if (source.kind === "output") out.add(source.task);
  else if (source.kind === "map") sourcesOf(source.source, out);
  else if (source.kind === "zip" || source.kind === "concat") source.sources.forEach((s) => sourcesOf(s, out));
}

function dataUpstream(args: Readonly<Record<string, ValueSource>>, mapping: Mapping | null): Set<string> {
  const out = new Set<string>();
  Object.values(args).forEach((s) => sourcesOf(s, out));
  if (mapping?.kind === "product") Object.values(mapping.kwargs).forEach((s) => sourcesOf(s, out));
  if (mapping?.kind === "kwargs") sourcesOf(mapping.source, out);
  return out;
}

/** `add [ ]` before expansion, `add [6]` after; plain for an unmapped task. */
export function taskLabel(name: string, mapped: boolean, mapCount: number | null | undefined): string {
  return mapped ? `${name} [${mapCount ?? " "}]` : name;
}

type Node = { id: string; label: string; kind: "task" | "group"; view?: TaskView; mapped: boolean; taskIds: string[] };
type Edge = { from: string; to: string; after: boolean };

function build(spec: DagSpec, views: ReadonlyMap<string, TaskView> | undefined, open: ReadonlySet<string>) {
  const shownAs = (taskId: string) => {
    const group = spec.tasks.find((t) => t.id === taskId)?.group;
    return group && !open.has(group) ? `group:${group}` : taskId;
  };
  const nodes = new Map<string, Node>();
  for (const t of spec.tasks) {
    const id = shownAs(t.id);
    if (id !== t.id) {
      const node = nodes.get(id) ?? { id, label: "", kind: "group" as const, mapped: true, taskIds: [] };
      node.taskIds.push(t.id);
      nodes.set(id, node);
      continue;
    }
    const view = views?.get(t.id);
    const mapped = view?.mapped ?? (t.mapping !== null || t.group !== null);
    const name = t.group ? t.id.slice(t.group.length + 1) : t.id;
    nodes.set(id, { id, label: taskLabel(name, mapped, view?.mapCount), kind: "task", view, mapped, taskIds: [t.id] });
  }
  for (const node of nodes.values()) {
    if (node.kind !== "group") continue;
    // A closed group sums its tasks' instances; its state is the worst of theirs.
    const counts: Record<string, number> = {};
    const states = node.taskIds.map((id) => views?.get(id)).filter((v): v is TaskView => v !== undefined);
    for (const v of states) for (const [s, n] of Object.entries(v.counts)) counts[s] = (counts[s] ?? 0) + n;
    const state = ["failed", "upstream_failed", "running", "pending", "skipped", "success"].find((s) => states.some((v) => v.state === s));
    const groupId = node.id.slice("group:".length);
    node.label = `▸ ${groupId} [${node.taskIds.length} tasks]`;
    node.view = state ? { state, mapped: true, mapCount: null, counts } : undefined;
  }
  const edges = new Map<string, Edge>();
  const add = (from: string, to: string, after: boolean) => {
    const a = shownAs(from);
    const b = shownAs(to);
    if (a === b) return;
    const key = `${a}→${b}`;
    const known = edges.get(key);
    if (!known || (known.after && !after)) edges.set(key, { from: a, to: b, after });
  };
  for (const t of spec.tasks) {
    const data = dataUpstream(t.args, t.mapping);
    const group = t.group ? spec.groups.find((g) => g.id === t.group) : undefined;
    if (group) dataUpstream(group.args, group.mapping).forEach((u) => data.add(u));
    // A group's inputs feed every task in it; drawn only into the tasks that start the group, they read as one flow.
    const inner = group !== undefined && t.upstream.some((u) => spec.tasks.find((x) => x.id === u)?.group === t.group);
    const shown = (u: string) => !(inner && group!.upstream.includes(u));
    for (const u of t.upstream) if (shown(u)) add(u, t.id, !data.has(u));
    for (const u of data) if (!t.upstream.includes(u) && shown(u)) add(u, t.id, false);
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()] };
}

function layout(spec: DagSpec, nodes: Node[], edges: Edge[], open: ReadonlySet<string>) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 56, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const group of open) g.setNode(`cluster:${group}`, { label: group, paddingTop: 24 });
  for (const n of nodes) {
    g.setNode(n.id, { ...BOX });
    const group = spec.tasks.find((t) => t.id === n.id)?.group;
    if (group && open.has(group)) g.setParent(n.id, `cluster:${group}`);
  }
  for (const e of edges) g.setEdge(e.from, e.to);
  dagre.layout(g);
  const size = g.graph();
  return { g, width: (size.width ?? 0) + 24, height: (size.height ?? 0) + 24 };
}

function StateBar({ counts, width, x, y }: { counts: Record<string, number>; width: number; x: number; y: number }) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  if (!total) return null;
  let at = x;
  return (
    <g>
      {sortedCounts(counts).map(([state, n]) => {
        const w = (n / total) * width;
        const rect = <rect x={at} y={y} width={w} height={5} fill={colourOf(state)} />;
        at += w;
        return rect;
      })}
    </g>
  );
}

export function Graph(props: { spec: DagSpec; views?: ReadonlyMap<string, TaskView>; selected?: string; onSelect?: (taskId: string) => void }) {
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  const { nodes, edges } = useMemo(() => build(props.spec, props.views, open), [props.spec, props.views, open]);
  const { g, width, height } = useMemo(() => layout(props.spec, nodes, edges, open), [props.spec, nodes, edges, open]);
  const toggle = (group: string) => setOpen((s) => {
    const next = new Set(s);
    if (!next.delete(group)) next.add(group);
    return next;
  });
  return (
    <svg class="graph" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`graph of ${props.spec.id}`}>
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" fill="#777" />
        </marker>
      </defs>
      {[...open].map((group) => {
        const c = g.node(`cluster:${group}`);
        if (!c) return null;
        return (
          <g class="cluster" key={`cluster:${group}`} onClick={() => toggle(group)}>
            <rect x={c.x - c.width / 2} y={c.y - c.height / 2} width={c.width} height={c.height} rx={8} />
            <text x={c.x - c.width / 2 + 8} y={c.y - c.height / 2 + 16}>▾ {group}</text>
          </g>
        );
      })}
      {edges.map((e) => {
        const points = g.edge(e.from, e.to)?.points ?? [];
        const d = points.map((p, i) => `${i ? "L" : "M"} ${p.x} ${p.y}`).join(" ");
        return <path key={`${e.from}→${e.to}`} class={e.after ? "edge after" : "edge"} d={d} marker-end="url(#arrow)" />;
      })}
      {nodes.map((n) => {
        const box = g.node(n.id);
        const x = box.x - BOX.width / 2;
        const y = box.y - BOX.height / 2;
        const state = n.view?.state ?? "pending";
        const onClick = () => (n.kind === "group" ? toggle(n.id.slice("group:".length)) : props.onSelect?.(n.id));
        return (
          <g class={`node ${n.kind}${props.selected === n.id ? " selected" : ""}`} key={n.id} data-task={n.id} data-state={state} onClick={onClick}>
            <title>{n.view ? `${n.id}: ${state}${n.mapped ? ` — ${countsText(n.view.counts)}` : ""}` : n.id}</title>
            <rect x={x} y={y} width={BOX.width} height={BOX.height} rx={6} class="box" />
            <rect x={x} y={y} width={6} height={BOX.height} rx={2} fill={colourOf(state)} class="state-stripe" />
            <text x={x + 14} y={y + 21} class="label">{n.label}</text>
            <text x={x + 14} y={y + 38} class="sub">{n.view ? (n.mapped && n.view.mapCount !== null ? countsText(n.view.counts) || state : state) : n.mapped ? "mapped" : ""}</text>
            {n.mapped && n.view ? <StateBar counts={n.view.counts} width={BOX.width - 20} x={x + 12} y={y + BOX.height - 10} /> : null}
          </g>
        );
      })}
    </svg>
  );
}
