// The agreement network of the chosen topics over a said_at range, as
// GET /v1/networks/agreement answers it, one window at a time: nodes on a circle in id
// order (as docs/network_picture.py and networkx's circular_layout place them), an edge
// per listed pair, green for congruence and red for conflict, its width by |weight|.
// The SVG is built with DOM calls: names and ids are Text nodes, never markup.

import { getJson } from "./api.js";
import { day, fill } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 900;
const HEIGHT = 420;
const RADIUS = 150;
const MOST_EDGE_LABELS = 24;
// The form's fields, kept in the page's address as net_<name>.
const FIELDS = ["from", "to", "window", "step", "kernel", "aggregation", "normalization", "actors"];

/** An SVG element: attributes from our code, children nodes or plain text. */
export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/**
 * "congruence", "conflict" or "even": the sign of the raw aggregation (normalisation
 * divides by a positive number, so it never changes it; a null weight keeps its sign).
 */
export function edgeSign(edge, aggregation) {
  const raw =
    aggregation === "congruence" ? edge.congruence
      : aggregation === "conflict" ? -edge.conflict
        : edge.congruence - edge.conflict;
  return raw > 0 ? "congruence" : raw < 0 ? "conflict" : "even";
}

/** Unit-circle places of the ids, the first at angle 0, counter-clockwise. */
export function circle(ids) {
  const turn = (2 * Math.PI) / Math.max(ids.length, 1);
  return new Map(ids.map((id, i) => [id, [Math.cos(i * turn), Math.sin(i * turn)]]));
}

const number = (x) => (x === null || x === undefined ? "–" : String(Math.round(x * 1000) / 1000));

export class NetworkView {
  /** ``$``: id → element; ``onChange()`` is called when the form changes. */
  constructor($, onChange) {
    this.$ = $;
    this.answer = null;
    this.at = 0;
    this.loads = 0;
    this.form = $("network-controls");
    this.form.addEventListener("submit", (event) => event.preventDefault());
    this.form.addEventListener("change", () => onChange());
    $("network-at").addEventListener("input", (event) => {
      this.at = Number(event.target.value);
      this.draw();
    });
  }

  /** Fill the form from the page's address. */
  readQuery(query) {
    for (const name of FIELDS) {
      const value = query.get(`net_${name}`);
      if (value !== null) this.$(`network-${name}`).value = value;
    }
    this.wanted = (query.get("net_topics") ?? "").split(",").filter(Boolean);
  }

  writeQuery(url) {
    const topics = this.chosenTopics();
    if (topics.length) url.searchParams.set("net_topics", topics.join(","));
    for (const name of FIELDS) {
      const value = this.$(`network-${name}`).value.trim();
      if (value) url.searchParams.set(`net_${name}`, value);
    }
  }

  /** The topic picker's options, the address's choice (then the picker's) selected. */
  setTopics(topics) {
    const select = this.$("network-topics");
    const chosen = new Set(this.chosenTopics());
    fill(select, ...topics.map((t) => {
      const option = document.createElement("option");
      option.value = t.topic_id;
      option.textContent = t.title;
      option.selected = chosen.has(t.topic_id);
      return option;
    }));
    if (topics.length) this.wanted = null; // the picker holds the choice from now on
  }

  chosenTopics() {
    const select = this.$("network-topics");
    const picked = [...select.selectedOptions].map((o) => o.value);
    return picked.length || !this.wanted ? picked : this.wanted;
  }

  /** The topics drawn: those picked, else the page's topic. */
  topics(fallback) {
    const picked = this.chosenTopics();
    return picked.length ? picked : fallback ? [fallback] : [];
  }

  /** Fetch and draw. ``shared``: include_descendants, as_of, known_at; ``range``: the
   * default [from, to] when the form leaves them empty. API errors show in the panel. */
  async load(shared, fallbackTopic, range) {
    const value = (name) => this.$(`network-${name}`).value.trim() || null;
    const topics = this.topics(fallbackTopic);
    const from = value("from") ?? range?.[0];
    const to = value("to") ?? range?.[1];
    this.answer = null;
    try {
      if (!topics.length || !from || !to) {
        this.note("Pick topics and a range (from, to).");
      } else {
        const params = { ...shared, topics: topics.join(","), from, to };
        for (const name of FIELDS.slice(2)) params[name] = value(name);
        const answer = await getJson("/v1/networks/agreement", params);
        if (answer.windows.length) {
          this.answer = answer;
          this.at = Math.min(this.at, answer.windows.length - 1);
          this.note("");
        } else {
          this.note("No window fits in the range.");
        }
      }
    } catch (problem) {
      this.note(String(problem.message ?? problem));
    }
    this.draw();
    this.loads += 1;
    this.$("network").dataset.loads = String(this.loads);
  }

  note(text) {
    this.$("network-note").textContent = text;
  }

  draw() {
    const picture = this.$("network");
    const picker = this.$("network-at");
    const windows = this.answer?.windows ?? [];
    this.$("network-picker").hidden = windows.length < 2;
    picker.max = String(Math.max(windows.length - 1, 0));
    picker.value = String(this.at);
    const shown = windows[this.at];
    if (!shown) {
      fill(this.$("network-caption"));
      fill(picture);
      picture.dataset.window = "";
      return;
    }
    this.$("network-caption").textContent =
      `window ${this.at + 1} of ${windows.length}: ${day(shown.start)} to ${day(shown.stop)}, ` +
      `${shown.statements} statements, polarization ` +
      (shown.polarization === null ? "– (no edges)" : number(shown.polarization));
    picture.dataset.window = String(this.at);
    fill(picture, ...this.picture(shown));
  }

  picture(shown) {
    const names = new Map(shown.nodes.map((n) => [n.id, n.name]));
    const place = circle(shown.nodes.map((n) => n.id));
    const at = (id) => [WIDTH / 2 + place.get(id)[0] * RADIUS, HEIGHT / 2 - place.get(id)[1] * RADIUS];
    const heaviest = Math.max(1e-9, ...shown.edges.map((e) => Math.abs(e.weight ?? 0)));
    const lines = [];
    const labels = [];
    for (const edge of shown.edges) {
      const [[x1, y1], [x2, y2]] = [at(edge.source), at(edge.target)];
      const sign = edgeSign(edge, this.answer.aggregation);
      const title = `${names.get(edge.source)} – ${names.get(edge.target)}: congruence ` +
        `${number(edge.congruence)}, conflict ${number(edge.conflict)}, weight ${number(edge.weight)}`;
      lines.push(svg("line", {
        class: `edge ${sign}`, x1, y1, x2, y2,
        "stroke-width": 1 + (7 * Math.abs(edge.weight ?? 0)) / heaviest,
        "data-source": edge.source, "data-target": edge.target, "data-sign": sign,
        "data-weight": edge.weight,
      }, svg("title", {}, title)));
      if (shown.edges.length <= MOST_EDGE_LABELS) {
        labels.push(svg("text", { class: `edge-label ${sign}`, x: (x1 + x2) / 2, y: (y1 + y2) / 2 + 4 },
          `${number(edge.congruence)} / ${number(edge.conflict)}`));
      }
    }
    const nodes = shown.nodes.map((node) => {
      const [x, y] = at(node.id);
      const [dx, dy] = place.get(node.id);
      const anchor = dx > 0.3 ? "start" : dx < -0.3 ? "end" : "middle";
      return svg("g", { class: "node", "data-node-id": node.id },
        svg("title", {}, `${node.name} (${node.id}${node.kind ? ", " + node.kind : ""})`),
        svg("circle", { cx: x, cy: y, r: 8 }),
        svg("text", { x: x + 14 * dx, y: y - 16 * dy + 4, "text-anchor": anchor }, node.name));
    });
    return [...lines, ...labels, ...nodes];
  }
}
