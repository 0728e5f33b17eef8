// The JSON API, as any other dashboard calls it: same-origin fetches, every page of a
// cursor-paginated list, and problem+json errors turned into readable messages.

export class ApiError extends Error {}

/** A URL under this origin with the given query parameters (null/undefined left out). */
export function apiUrl(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(name, String(value));
    }
  }
  return url;
}

/** One path segment, whatever the id holds. */
export const seg = (id) => encodeURIComponent(id);

export async function getJson(path, params = {}) {
  const response = await fetch(apiUrl(path, params), { headers: { Accept: "application/json" } });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      detail = problem.detail || problem.title || detail;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(`${path}: ${detail}`);
  }
  return response.json();
}

/** Every item of a cursor-paginated list (``key`` names the list in each page). */
export async function getAll(path, key, params = {}, limit = 1000) {
  const items = [];
  let cursor = null;
  for (;;) {
    const page = await getJson(path, { ...params, limit, cursor });
    items.push(...page[key]);
    if (!page.next_cursor || page[key].length < limit) return { items, last: page };
    cursor = page.next_cursor;
  }
}

/** Run ``work`` over ``items`` with at most ``width`` requests in flight. */
export async function mapLimited(items, width, work) {
  const results = new Array(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index]);
    }
  });
  await Promise.all(runners);
  return results;
}
