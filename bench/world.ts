/**
 * The service in virtual time: Poisson arrivals at the scenario's request rate, split between the
 * versions by the canary weight last written, each request failing or being slow with its
 * version's current rates (plus error bursts), and counters that Prometheus scrapes every
 * scrape interval at a random phase.
 *
 * Time is cut into pieces where nothing changes (weight, rates, bursts) and that end at the
 * scrapes; the counts of a piece are drawn at once (Poisson for requests, binomial for errors and
 * slow requests), which is exact for a Poisson process and costs a few draws per 15 s whatever
 * the request rate.
 */
import binomialFactory from "@stdlib/random-base-binomial";
import poissonFactory from "@stdlib/random-base-poisson";
import { seededRandom } from "../test/support/random.ts";
import { changeMinutes, ratesAt, type Scenario } from "./scenario.ts";

export type Version = "canary" | "stable";

/** Cumulative counts of one version; `requests` includes the errors. */
export interface Counts {
  requests: number;
  errors: number;
  slow: number;
}

export interface Scrape extends Counts {
  at: number;
}

/** How long the stable version has been serving before the rollout starts (fills Prometheus' windows). */
const WARM_UP_MS = 10 * 60_000;
/** Bursts are drawn for this far ahead at a time. */
const BURST_HORIZON_MS = 6 * 60 * 60_000;

const zero = (): Counts => ({ requests: 0, errors: 0, slow: 0 });

export class ServiceWorld {
  readonly scenario: Scenario;
  /** When the rollout starts: the scenario's minutes count from here. */
  readonly rolloutStart: number;
  readonly scrapeIntervalMs: number;
  /** The first scrape at or after the world's start. */
  private readonly scrapePhase: number;
  private readonly changes: number[];
  private now: number;
  private weight = 0;
  /** Everything served so far, exactly. */
  readonly served: Record<Version, Counts> = { canary: zero(), stable: zero() };
  /** What Prometheus scraped, in time order; a version has no series until it served a request. */
  readonly scrapes: Record<Version, Scrape[]> = { canary: [], stable: [] };
  private nextScrape: number;
  private readonly poisson: (lambda: number) => number;
  private readonly binomial: (n: number, p: number) => number;
  private readonly burstRandom: () => number;
  private bursts: Array<{ from: number; to: number; shared: boolean; errorRate: number }> = [];
  private burstsUntil: number;

  constructor(scenario: Scenario, seed: number, rolloutStart: number) {
    this.scenario = scenario;
    this.rolloutStart = rolloutStart;
    this.now = rolloutStart - WARM_UP_MS;
    this.scrapeIntervalMs = scenario.scrapeIntervalSeconds * 1000;
    // Bursts and the scrape phase come from their own stream, so every rule sees the same ones.
    this.burstRandom = seededRandom(seed ^ 0x5bd1e995);
    this.scrapePhase = this.burstRandom() * this.scrapeIntervalMs;
    this.nextScrape = this.now + this.scrapePhase;
    const prng = seededRandom(seed);
    this.poisson = poissonFactory.factory({ prng });
    this.binomial = binomialFactory.factory({ prng });
    this.changes = changeMinutes(scenario).map((m) => rolloutStart + m * 60_000);
    this.burstsUntil = this.now;
    this.drawBursts(rolloutStart + BURST_HORIZON_MS);
  }

  get time(): number {
    return this.now;
  }

  get canaryWeight(): number {
    return this.weight;
  }

  /** Sets the canary weight from the current time on (advance first). */
  setWeight(weight: number): void {
    this.weight = weight;
  }

  private drawBursts(until: number): void {
    for (const burst of this.scenario.bursts) {
      let at = this.burstsUntil;
      for (;;) {
        at += -Math.log(1 - this.burstRandom()) * burst.meanSpacingMinutes * 60_000;
        if (at >= until) break;
        const mean = burst.durationSeconds * 1000;
        const lasts =
          burst.durationDistribution === "exponential" ? -Math.log(1 - this.burstRandom()) * mean : mean;
        this.bursts.push({
          from: at,
          to: at + lasts,
          shared: burst.shared,
          errorRate: burst.errorRate,
        });
      }
    }
    this.bursts.sort((a, b) => a.from - b.from);
    this.burstsUntil = until;
  }

  /** The burst error rate each version suffers at `t` (0 outside bursts). */
  private burstRates(t: number): Record<Version, number> {
    let canary = 0;
    let stable = 0;
    for (const b of this.bursts) {
      if (b.from > t) break;
      if (b.to <= t) continue;
      canary = 1 - (1 - canary) * (1 - b.errorRate);
      if (b.shared) stable = 1 - (1 - stable) * (1 - b.errorRate);
    }
    return { canary, stable };
  }

  /** The next instant after `t` where a rate or a burst changes. */
  private nextChange(t: number): number {
    let next = Number.POSITIVE_INFINITY;
    for (const c of this.changes) if (c > t && c < next) next = c;
    for (const b of this.bursts) {
      if (b.from > t && b.from < next) next = b.from;
      if (b.to > t && b.to < next) next = b.to;
      if (b.from > next) break;
    }
    return next;
  }

  /** Moves time forward to `t`, serving requests and scraping on the way. */
  advanceTo(t: number): void {
    while (this.now < t) {
      if (t > this.burstsUntil - 60 * 60_000) this.drawBursts(this.burstsUntil + BURST_HORIZON_MS);
      const end = Math.min(t, this.nextScrape, this.nextChange(this.now));
      if (end > this.now) this.serve(this.now, end);
      this.now = end;
      if (this.now === this.nextScrape) {
        this.scrape(this.now);
        this.nextScrape += this.scrapeIntervalMs;
      }
    }
  }

  private serve(from: number, to: number): void {
    const seconds = (to - from) / 1000;
    const minute = (from - this.rolloutStart) / 60_000;
    const bursts = this.burstRates(from);
    for (const version of ["canary", "stable"] as const) {
      const share = version === "canary" ? this.weight / 100 : 1 - this.weight / 100;
      if (share <= 0) continue;
      const requests = this.poisson(this.scenario.requestsPerSecond * share * seconds);
      if (requests === 0) continue;
      const own = ratesAt(this.scenario[version], minute);
      const errorRate = 1 - (1 - own.errorRate) * (1 - bursts[version]);
      const counts = this.served[version];
      counts.requests += requests;
      counts.errors += errorRate > 0 ? this.binomial(requests, errorRate) : 0;
      counts.slow += own.slowShare > 0 ? this.binomial(requests, own.slowShare) : 0;
    }
  }

  private scrape(at: number): void {
    for (const version of ["canary", "stable"] as const) {
      const counts = this.served[version];
      // Istio creates a version's series with its first request: before that, no series at all.
      if (counts.requests > 0) this.scrapes[version].push({ at, ...counts });
    }
  }

  /** The last scrape at or before `t` (the counters as Prometheus answers an instant query), if any. */
  scrapedAt(version: Version, t: number): Scrape | undefined {
    const list = this.scrapes[version];
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i] as Scrape;
      if (s.at <= t) return s;
    }
    return undefined;
  }

  /** The scrapes in [from, to], as a range selector selects them. */
  scrapesIn(version: Version, from: number, to: number): Scrape[] {
    const list = this.scrapes[version];
    const out: Scrape[] = [];
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i] as Scrape;
      if (s.at < from) break;
      if (s.at <= to) out.push(s);
    }
    return out.reverse();
  }
}
