// Each actor's stance over time: one stepped line per actor, score by said_at.
// The tooltip is Chart.js's own, drawn on the canvas (text never becomes markup); the
// detail panel under the chart shows the hovered point with DOM text nodes.

import { day, el, fill, sourceLink } from "./dom.js";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22"];
const STANCE_AT = { "-1": "oppose", 0: "neutral", 1: "support" };

/** Long text as canvas tooltip lines: wrapped, and cut after a few lines. */
function wrap(text, width = 64, most = 6) {
  const lines = [];
  let line = "";
  for (const word of String(text).split(/\s+/)) {
    if (line && (line + " " + word).length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? line + " " + word : word;
    }
  }
  if (line) lines.push(line);
  return lines.length > most ? [...lines.slice(0, most - 1), lines[most - 1] + " …"] : lines;
}

function speakerText(point) {
  if (!point.speaker) return null;
  return point.speaker.role ? `${point.speaker.name}, ${point.speaker.role}` : point.speaker.name;
}

// A stance holds until the next statement: each line goes on, dashed, to the right edge.
const HOLD = {
  id: "stanceHold",
  afterDatasetsDraw(chart) {
    const { ctx, chartArea } = chart;
    chart.data.datasets.forEach((dataset, index) => {
      const drawn = chart.getDatasetMeta(index).data;
      if (!chart.isDatasetVisible(index) || !drawn.length) return;
      const last = drawn[drawn.length - 1];
      if (last.x >= chartArea.right) return;
      ctx.save();
      ctx.strokeStyle = dataset.borderColor;
      ctx.lineWidth = 2;
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(chartArea.right, last.y);
      ctx.stroke();
      ctx.restore();
    });
  },
};

export class StanceChart {
  constructor(canvas, detail, names) {
    this.detail = detail;
    this.names = names; // () => Map actor_id -> display name
    this.chart = new window.Chart(canvas, {
      type: "line",
      data: { datasets: [] },
      plugins: [HOLD],
      options: {
        animation: false,
        maintainAspectRatio: false,
        interaction: { mode: "nearest", intersect: true },
        scales: {
          x: {
            type: "linear",
            ticks: { callback: (value) => day(value), maxRotation: 0, autoSkipPadding: 24 },
          },
          y: {
            min: -1.15,
            max: 1.15,
            afterBuildTicks: (scale) => {
              scale.ticks = [-1, -0.5, 0, 0.5, 1].map((value) => ({ value }));
            },
            ticks: { callback: (value) => STANCE_AT[value] ?? value },
          },
        },
        plugins: {
          legend: { position: "bottom" },
          tooltip: {
            callbacks: {
              title: (items) => items.map((i) => `${i.dataset.label} · ${day(i.raw.x)}`),
              label: (item) => {
                const p = item.raw.point;
                return `${p.stance} (${p.score})${p.change === "none" ? "" : ", " + p.change}`;
              },
              afterLabel: (item) => this.tooltipLines(item.raw.point),
            },
          },
        },
        // Points drawn on the same spot (two actors, one day) are all shown.
        onHover: (_event, elements) => {
          if (elements.length) this.showDetail(elements.map((e) => this.pointAt(e)));
        },
      },
    });
  }

  pointAt(element) {
    return this.chart.data.datasets[element.datasetIndex].data[element.index].point;
  }

  tooltipLines(point) {
    if (!point) return [];
    const lines = [];
    if (point.quote) lines.push(...wrap(`“${point.quote}”`));
    const speaker = speakerText(point);
    lines.push(`— ${speaker ?? this.name(point.actor_id)}`);
    if (point.source_url) lines.push(String(point.source_url));
    return lines;
  }

  name(actorId) {
    return this.names().get(actorId) ?? actorId;
  }

  /** ``series``: [{actorId, points: [HistoryPoint…]}], one line each. */
  show(series) {
    this.chart.data.datasets = series.map(({ actorId, points }, index) => {
      const colour = PALETTE[index % PALETTE.length];
      return {
        label: this.name(actorId),
        actorId,
        data: points.map((p) => ({ x: Date.parse(p.said_at), y: p.score, point: p })),
        stepped: "before",
        borderColor: colour,
        backgroundColor: colour,
        borderWidth: 2,
        pointRadius: (ctx) => (ctx.raw?.point.change === "flip" ? 7 : 4),
        pointStyle: (ctx) => (ctx.raw?.point.change === "flip" ? "rectRot" : "circle"),
        pointHoverRadius: 8,
      };
    });
    this.chart.update();
    if (!series.some((s) => s.points.length)) {
      fill(this.detail, el("p", { class: "hint" }, "No statements on this topic."));
    }
  }

  showDetail(points) {
    fill(this.detail, ...points.map((point) => this.describe(point)));
  }

  describe(point) {
    const speaker = speakerText(point);
    return el(
      "article",
      { class: "point", dataset: { statementId: point.statement_id } },
      el("div", { class: `stance-label ${point.stance}` }, point.stance),
      point.quote ? el("blockquote", { class: "quote" }, point.quote) : null,
      el(
        "p",
        { class: "meta" },
        el("span", { class: "speaker" }, speaker ?? "(no speaker named)"),
        " · ",
        el("span", { class: "actor" }, this.name(point.actor_id)),
        " · ",
        el("time", { datetime: point.said_at }, day(point.said_at)),
        point.change === "none" ? null : el("span", { class: `badge ${point.change}` }, point.change),
      ),
      point.source_url ? el("p", { class: "source" }, "Source: ", sourceLink(point.source_url)) : null,
      el("p", { class: "statement-id" }, point.statement_id),
    );
  }
}
