// The latest change points of the selected topic, newest said_at first (then by actor and
// statement id), flips marked.
// The feed is a log of "added" and "withdrawn" entries; replaying it gives the change
// points that stand now.

import { day, el, fill } from "./dom.js";

/** The change points that stand after replaying the feed in order. */
export function standing(entries) {
  const live = new Map();
  for (const entry of entries) {
    const key = [entry.actor_id, entry.topic_id, entry.include_descendants, entry.statement_id].join("\u0000");
    if (entry.status === "withdrawn") live.delete(key);
    else live.set(key, entry);
  }
  const order = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  return [...live.values()].sort(
    (a, b) =>
      Date.parse(b.said_at) - Date.parse(a.said_at) ||
      order(a.actor_id, b.actor_id) ||
      order(a.statement_id, b.statement_id),
  );
}

export function renderChanges(list, entries, name, most = 20) {
  const items = entries.slice(0, most).map((entry) =>
    el(
      "li",
      { class: `change ${entry.change}`, dataset: { statementId: entry.statement_id, change: entry.change } },
      el("time", { datetime: entry.said_at }, day(entry.said_at)),
      " ",
      el("span", { class: "actor" }, name(entry.actor_id)),
      " ",
      el(
        "span",
        { class: "transition" },
        entry.previous_stance ? `${entry.previous_stance} → ${entry.stance}` : entry.stance,
      ),
      entry.change === "flip" ? el("span", { class: "badge flip" }, "flip") : null,
    ),
  );
  if (!items.length) items.push(el("li", { class: "hint" }, "No changes."));
  fill(list, ...items);
}
