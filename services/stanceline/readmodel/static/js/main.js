// The dashboard: controls, the panels (the network in network.js) and the live feed, wired together.
// The page state lives in the URL (?topic=…&include_descendants=…&as_of=…&known_at=…&net_…), so
// a view can be bookmarked and shared.

import { getAll, mapLimited, seg } from "./api.js";
import { standing, renderChanges } from "./changes.js";
import { day, el, fill } from "./dom.js";
import { renderHeatmap, treeOrder } from "./heatmap.js";
import { LiveFeed } from "./live.js";
import { NetworkView } from "./network.js";
import { StanceChart } from "./stance-chart.js";

const MAX_ACTORS = 60;
const MAX_TOPICS = 24;
// Change points travel on the feed; a statement that repeats the stance before it does
// not. The open topic is re-read this often as well (histories and stances carry ETags,
// so the browser revalidates and an unchanged answer costs a 304).
const REREAD_MS = 30000;
const $ = (id) => document.getElementById(id);

const state = readUrl();
let actors = new Map(); // actor_id -> Actor
let topics = [];
let heatmapRows = [];
let queue = Promise.resolve();
let refreshes = 0;
let topicRange = null; // [first, last] said_at day on the selected topic: the network's default

const chart = new StanceChart($("stance-chart"), $("point-detail"), () => names());
const live = new LiveFeed($("live"), (topicIds) => schedule(topicIds));
const network = new NetworkView($, () => {
  writeUrl();
  queue = queue.then(loadNetwork);
});
network.readQuery(new URLSearchParams(window.location.search));

function names() {
  return new Map([...actors.values()].map((a) => [a.actor_id, a.name]));
}

function readUrl() {
  const query = new URLSearchParams(window.location.search);
  return {
    topic: query.get("topic"),
    includeDescendants: query.get("include_descendants") !== "false",
    asOf: query.get("as_of") ?? "",
    knownAt: query.get("known_at") ?? "",
  };
}

function writeUrl() {
  const url = new URL(window.location.href);
  url.search = "";
  if (state.topic) url.searchParams.set("topic", state.topic);
  url.searchParams.set("include_descendants", String(state.includeDescendants));
  if (state.asOf) url.searchParams.set("as_of", state.asOf);
  if (state.knownAt) url.searchParams.set("known_at", state.knownAt);
  network.writeQuery(url);
  window.history.replaceState(null, "", url);
}

/** The read parameters every panel shares. */
function reading() {
  return { as_of: state.asOf || null, known_at: state.knownAt || null };
}

function rootOf(actorId) {
  let id = actorId;
  for (let hops = 0; hops < 64; hops++) {
    const parent = actors.get(id)?.parent_id;
    if (!parent) break;
    id = parent;
  }
  return id;
}

async function loadCatalogue() {
  const [actorList, topicList] = await Promise.all([
    getAll("/v1/actors", "actors"),
    getAll("/v1/topics", "topics"),
  ]);
  actors = new Map(actorList.items.map((a) => [a.actor_id, a]));
  topics = topicList.items;
}

async function loadHeatmap() {
  const ordered = treeOrder([...actors.values()]).slice(0, MAX_ACTORS);
  const params = { ...reading(), include_descendants: state.includeDescendants };
  const rows = await mapLimited(ordered, 6, async ({ actor, depth }) => {
    const path = `/v1/actors/${seg(actor.actor_id)}/stances`;
    return { actor, depth, stances: (await getAll(path, "stances", params)).items };
  });
  heatmapRows = rows.filter((row) => row.stances.length);
}

function defaultTopic() {
  // The topic of the most recent statement on the heatmap, else the first one known.
  let latest = null;
  for (const row of heatmapRows) {
    for (const s of row.stances) {
      if (!latest || Date.parse(s.said_at) > Date.parse(latest.said_at)) latest = s;
    }
  }
  return latest?.topic_id ?? topics[0]?.topic_id ?? null;
}

/** The chart and the changes of the selected topic; returns the changes feed's cursor. */
async function loadTopic() {
  const topic = state.topic;
  const speakers = (await getAll(`/v1/topics/${seg(topic)}/stances`, "stances", reading())).items;
  let lineActors = speakers.map((s) => s.actor_id);
  if (state.includeDescendants) lineActors = lineActors.map(rootOf);
  lineActors = [...new Set(lineActors)].sort();
  const params = { ...reading(), include_descendants: state.includeDescendants };
  const series = await mapLimited(lineActors, 6, async (actorId) => {
    const path = `/v1/actors/${seg(actorId)}/topics/${seg(topic)}/history`;
    return { actorId, points: (await getAll(path, "points", params, 10000)).items };
  });
  const feed = await getAll("/v1/changes", "changes", { ...params, topic });
  return { series, changes: standing(feed.items), cursor: feed.last.next_cursor };
}

/** The first and last said_at day of the chart's points, or null when it has none. */
function rangeOf(series) {
  const times = series.flatMap((s) => s.points.map((p) => Date.parse(p.said_at))).sort((a, b) => a - b);
  return times.length ? [day(times[0]), day(times[times.length - 1])] : null;
}

function loadNetwork() {
  const shared = { ...reading(), include_descendants: state.includeDescendants };
  return network.load(shared, state.topic, topicRange);
}

function renderControls() {
  const select = $("topic");
  fill(select, ...topics.map((t) => el("option", { value: t.topic_id }, t.title)));
  select.value = state.topic ?? "";
  $("include-descendants").checked = state.includeDescendants;
  $("as-of").value = state.asOf;
  $("known-at").value = state.knownAt ? localInput(state.knownAt) : "";
  const current = topics.find((t) => t.topic_id === state.topic);
  $("topic-title").textContent = current ? current.title : "";
}

/** ISO time → the value a datetime-local input shows (local time, seconds). */
function localInput(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 19);
}

/** Reload what depends on ``topicIds`` (null: everything); one refresh at a time. */
function schedule(topicIds) {
  queue = queue.then(() => refresh(topicIds));
  return queue;
}

async function refresh(topicIds) {
  const error = $("error");
  try {
    await loadCatalogue();
    await loadHeatmap();
    if (!state.topic || !topics.some((t) => t.topic_id === state.topic)) {
      state.topic = defaultTopic();
      writeUrl();
    }
    renderControls();
    network.setTopics(topics);
    renderHeatmap($("heatmap"), heatmapRows, topics.slice(0, MAX_TOPICS), state.topic, selectTopic);
    $("heatmap-note").textContent = truncation();
    let cursor = null;
    if (state.topic && (topicIds === null || topicIds.has(state.topic))) {
      const shown = await loadTopic();
      chart.show(shown.series);
      renderChanges($("changes"), shown.changes, (id) => actors.get(id)?.name ?? id);
      cursor = shown.cursor;
      topicRange = rangeOf(shown.series);
    }
    if (topicIds === null || network.topics(state.topic).some((t) => topicIds.has(t))) {
      await loadNetwork();
    }
    error.hidden = true;
    refreshes += 1;
    document.body.dataset.refreshes = String(refreshes);
    return cursor;
  } catch (problem) {
    error.textContent = String(problem.message ?? problem);
    error.hidden = false;
    return null;
  }
}

function truncation() {
  const actorsLeft = Math.max(0, actors.size - MAX_ACTORS);
  const topicsLeft = Math.max(0, topics.length - MAX_TOPICS);
  if (!actorsLeft && !topicsLeft) return "";
  return `Showing the first ${MAX_ACTORS} actors and ${MAX_TOPICS} topics ` +
    `(${actorsLeft} actors and ${topicsLeft} topics more: pick a topic for its chart).`;
}

function selectTopic(topicId) {
  state.topic = topicId;
  writeUrl();
  schedule(null);
}

async function restart() {
  writeUrl();
  const cursor = await schedule(null);
  live.connect({ include_descendants: state.includeDescendants }, cursor);
}

$("controls").addEventListener("submit", (event) => event.preventDefault());
$("topic").addEventListener("change", (event) => selectTopic(event.target.value));
$("include-descendants").addEventListener("change", (event) => {
  state.includeDescendants = event.target.checked;
  restart();
});
$("as-of").addEventListener("change", (event) => {
  state.asOf = event.target.value;
  writeUrl();
  schedule(null);
});
$("known-at").addEventListener("change", (event) => {
  const date = new Date(event.target.value);
  state.knownAt = event.target.value && !Number.isNaN(date.getTime()) ? date.toISOString() : "";
  writeUrl();
  schedule(null);
});
$("now").addEventListener("click", () => {
  state.asOf = "";
  state.knownAt = "";
  writeUrl();
  schedule(null);
});

restart();
setInterval(() => {
  if (state.topic) schedule(new Set([state.topic]));
}, REREAD_MS);
