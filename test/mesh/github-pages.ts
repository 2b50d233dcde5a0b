/**
 * GitHub's pagination as its REST API answers it: `per_page` (default 30, at most 100), `page`
 * (from 1), and a Link header with prev/first and next/last where they exist.
 */
export interface Page {
  perPage: number;
  page: number;
  /** The Link header, when there is another page. */
  headers: Record<string, string>;
}

export function pageOf(url: URL, total: number): Page {
  const perPage = Math.min(Math.max(Number(url.searchParams.get("per_page") ?? 30) || 30, 1), 100);
  const page = Math.max(Number(url.searchParams.get("page") ?? 1) || 1, 1);
  const last = Math.max(Math.ceil(total / perPage), 1);
  const link = (p: number, rel: string) => {
    const u = new URL(url);
    u.searchParams.set("per_page", String(perPage));
    u.searchParams.set("page", String(p));
    return `<${u.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page > 1) links.push(link(page - 1, "prev"), link(1, "first"));
  if (page < last) links.push(link(page + 1, "next"), link(last, "last"));
  return { perPage, page, headers: links.length ? { link: links.join(", ") } : {} };
}
