// Live updates from /v1/stream (Server-Sent Events). Any message means "something in
// this topic changed": the page refreshes what it shows for that topic, debounced so a
// burst of events costs one refresh. EventSource reconnects with Last-Event-ID by itself;
// if the stream refuses us outright (not there, or too many streams), poll the changes
// feed instead.

import { apiUrl, getJson } from "./api.js";

// The feed names its change messages "change"; the others are listened to as well, since
// any message is a reason to refresh.
const EVENT_NAMES = ["change", "message", "point", "retraction", "withdrawal"];
const POLL_MS = 5000;

export class LiveFeed {
  constructor(status, onChange, { debounceMs = 250 } = {}) {
    this.status = status;
    this.onChange = onChange; // (Set of topic ids, or null for "unknown: everything")
    this.debounceMs = debounceMs;
    this.pending = new Set();
    this.unknown = false;
    this.timer = null;
    this.source = null;
    this.poller = null;
  }

  /** (Re)open the stream with these filters; ``cursor`` is where polling would start. */
  connect(params, cursor) {
    this.close();
    this.params = params;
    this.cursor = cursor;
    const source = new EventSource(apiUrl("/v1/stream", params));
    this.source = source;
    source.onopen = () => this.setMode("stream", "live");
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) this.poll();
      else this.setMode("reconnecting", "reconnecting…");
    };
    for (const name of EVENT_NAMES) {
      source.addEventListener(name, (event) => this.received(event.data));
    }
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
    clearInterval(this.poller);
    this.poller = null;
  }

  poll() {
    this.close();
    this.setMode("polling", "live (polling)");
    this.poller = setInterval(async () => {
      try {
        const page = await getJson("/v1/changes", { ...this.params, cursor: this.cursor, limit: 1000 });
        this.cursor = page.next_cursor;
        for (const entry of page.changes) this.received(JSON.stringify(entry));
      } catch {
        this.setMode("polling", "live (polling; the server does not answer)");
      }
    }, POLL_MS);
  }

  received(data) {
    let topic = null;
    try {
      topic = JSON.parse(data)?.topic_id ?? null;
    } catch {
      // not JSON: refresh everything
    }
    if (typeof topic === "string") this.pending.add(topic);
    else this.unknown = true;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const topics = this.unknown ? null : new Set(this.pending);
      this.pending.clear();
      this.unknown = false;
      this.onChange(topics);
    }, this.debounceMs);
  }

  setMode(mode, text) {
    this.status.dataset.mode = mode;
    this.status.textContent = text;
  }
}
