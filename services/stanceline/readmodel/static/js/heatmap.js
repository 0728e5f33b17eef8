// Actor × topic: each actor's current stance on each topic (its tree's, with roll-up),
// contested cells marked. Names and titles are text nodes; the cell's hover label is
// its title property (an attribute value, never parsed as markup).

import { day, el, fill } from "./dom.js";

const SYMBOL = { support: "+", oppose: "−", neutral: "0" };

/** Actors in tree order (parents before children), each with its depth. */
export function treeOrder(actors) {
  const children = new Map();
  const known = new Set(actors.map((a) => a.actor_id));
  for (const actor of actors) {
    const parent = actor.parent_id && known.has(actor.parent_id) ? actor.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(actor);
  }
  const ordered = [];
  const visit = (parent, depth) => {
    for (const actor of children.get(parent) ?? []) {
      ordered.push({ actor, depth });
      visit(actor.actor_id, depth + 1);
    }
  };
  visit(null, 0);
  return ordered;
}

/**
 * ``rows``: [{actor, depth, stances: [ActorTopicStance…]}]; ``topics``: [Topic…].
 * ``onTopic(topicId)`` is called when a column header is clicked.
 */
export function renderHeatmap(table, rows, topics, selected, onTopic) {
  const head = el("tr", {}, el("th", { scope: "col" }, "actor"));
  for (const topic of topics) {
    const button = el("button", { type: "button", title: topic.title }, topic.title);
    button.addEventListener("click", () => onTopic(topic.topic_id));
    head.append(
      el("th", { scope: "col", class: topic.topic_id === selected ? "selected" : null }, button),
    );
  }
  const body = [];
  for (const { actor, depth, stances } of rows) {
    const byTopic = new Map(stances.map((s) => [s.topic_id, s]));
    const row = el(
      "tr",
      { dataset: { actorId: actor.actor_id } },
      el("th", { scope: "row", class: `depth-${Math.min(depth, 4)}`, title: actor.actor_id }, actor.name),
    );
    for (const topic of topics) {
      row.append(cell(actor, topic, byTopic.get(topic.topic_id)));
    }
    body.push(row);
  }
  fill(table, el("thead", {}, head), el("tbody", {}, ...body));
}

function cell(actor, topic, stance) {
  if (!stance) return el("td", { class: "empty", title: `${actor.name}: nothing on ${topic.title}` });
  const lines = [
    `${actor.name} on “${topic.title}”`,
    `${stance.stance} (${stance.score}) since ${day(stance.said_at)}`,
  ];
  if (stance.contested) {
    lines.push(`contested: supporting ${stance.supporting.join(", ")}`);
    lines.push(`opposing ${stance.opposing.join(", ")}`);
  }
  return el(
    "td",
    {
      class: `stance ${stance.stance}${stance.contested ? " contested" : ""}`,
      title: lines.join("\n"),
      dataset: { topicId: topic.topic_id, stance: stance.stance, contested: String(stance.contested) },
    },
    SYMBOL[stance.stance] ?? "?",
    stance.contested ? el("span", { class: "contested-mark", "aria-label": "contested" }, "⚡") : null,
  );
}
