/**
 * The service in virtual time, as Prometheus sees it: Poisson arrivals at the scenario's request
 * rate (which may change over time), split between the versions by the canary weight last written
 * and evenly over each version's pods; each request failing or being slow with its version's rates
 * at that moment and weight (plus bursts of random or fixed length on both versions, the canary or
 * stable). Every pod is its own scrape target, scraped every interval at its own phase; a scrape
 * may fail (no sample, and Prometheus marks the pod's series stale until the next one), and a pod
 * may restart (its counters start again from zero).
 *
 * Each pod's time is cut into pieces where nothing changes (weight, rates, bursts) and that end at
 * its scrapes; the counts of a piece are drawn at once (Poisson for requests, binomial for errors
 * and slow requests), which is exact for a Poisson process and costs a few draws per scrape.
 */
import binomialFactory from "@stdlib/random-base-binomial";
import poissonFactory from "@stdlib/random-base-poisson";
import { seededRandom } from "../test/support/random.ts";
import { burstTargets, changeMinutes, ratesAt, requestRateAt, type Scenario } from "./scenario.ts";

export type Version = "canary" | "stable";
export const VERSIONS: readonly Version[] = ["canary", "stable"];

/** Cumulative counts of one version; `requests` includes the errors. */
export interface Counts {
  requests: number;
  errors: number;
  slow: number;
}

/** A pod's counters by Istio series: non-5xx and 5xx responses, and the slow ones of each. */
export interface PodCounters {
  ok: number;
  errors: number;
  slowOk: number;
  slowErrors: number;
}

/** One scrape of one pod; `missed`: the scrape failed and its series went stale. */
export interface PodScrape extends PodCounters {
  at: number;
  missed?: boolean;
}

export interface Pod {
  name: string;
  version: Version;
  /** Where its scrapes fall within the interval. */
  phaseMs: number;
  counters: PodCounters;
  scrapes: PodScrape[];
  now: number;
  nextScrape: number;
  restarts: number[];
}

/** How long the stable version has been serving before the rollout starts (fills Prometheus' windows). */
const WARM_UP_MS = 10 * 60_000;
/** Bursts and restarts are drawn for this far ahead at a time. */
const HORIZON_MS = 6 * 60 * 60_000;
/** What "the new version's errors over the first 30 minutes" counts. */
export const FIRST_MINUTES_MS = 30 * 60_000;

const zeroCounters = (): PodCounters => ({ ok: 0, errors: 0, slowOk: 0, slowErrors: 0 });

interface BurstSpan {
  from: number;
  to: number;
  canary: boolean;
  stable: boolean;
  errorRate: number;
}

export class ServiceWorld {
  readonly scenario: Scenario;
  /** When the rollout starts: the scenario's minutes count from here. */
  readonly rolloutStart: number;
  readonly scrapeIntervalMs: number;
  readonly pods: Pod[];
  private readonly changes: number[];
  private now: number;
  private weight = 0;
  /** When the canary weight changed, for pieces that must not straddle it. */
  private weightChangedAt: number;
  /** Everything served so far, exactly. */
  readonly served: Record<Version, Counts> = {
    canary: { requests: 0, errors: 0, slow: 0 },
    stable: { requests: 0, errors: 0, slow: 0 },
  };
  /**
   * Requests per second a load tester sends straight to the canary's pods (Flagger's tutorial's
   * `hey -q 10 -c 2`): they count in the canary's metrics, never in what users were served.
   */
  loadTesterRps = 0;
  /** The canary's errors served by FIRST_MINUTES_MS after the rollout start (set when time passes it). */
  canaryErrorsInFirstMinutes?: number;
  private readonly poisson: (lambda: number) => number;
  private readonly binomial: (n: number, p: number) => number;
  private readonly worldRandom: () => number;
  private readonly scrapeRandom: () => number;
  private bursts: BurstSpan[] = [];
  private drawnUntil: number;

  constructor(scenario: Scenario, seed: number, rolloutStart: number) {
    this.scenario = scenario;
    this.rolloutStart = rolloutStart;
    this.now = rolloutStart - WARM_UP_MS;
    this.weightChangedAt = this.now;
    this.scrapeIntervalMs = scenario.scrapeIntervalSeconds * 1000;
    // Bursts, restarts, scrape phases and missed scrapes come from their own streams, so every rule
    // sees the same ones whatever it draws for requests.
    this.worldRandom = seededRandom(seed ^ 0x5bd1e995);
    this.scrapeRandom = seededRandom(seed ^ 0x27d4eb2f);
    const prng = seededRandom(seed);
    this.poisson = poissonFactory.factory({ prng });
    this.binomial = binomialFactory.factory({ prng });
    this.pods = [];
    for (const version of VERSIONS)
      for (let i = 0; i < scenario.scraping.podsPerVersion; i++) {
        const phaseMs = this.worldRandom() * this.scrapeIntervalMs;
        this.pods.push({
          name: `backend-${version === "canary" ? "v2" : "v1"}-${i}`,
          version,
          phaseMs,
          counters: zeroCounters(),
          scrapes: [],
          now: this.now,
          nextScrape: this.now + phaseMs,
          restarts: [],
        });
      }
    this.changes = [
      ...changeMinutes(scenario).map((m) => rolloutStart + m * 60_000),
      rolloutStart + FIRST_MINUTES_MS,
    ];
    this.drawnUntil = this.now;
    this.drawAhead(rolloutStart + HORIZON_MS);
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
    this.weightChangedAt = this.now;
  }

  private drawAhead(until: number): void {
    for (const burst of this.scenario.bursts) {
      const on = burstTargets(burst);
      let at = this.drawnUntil;
      for (;;) {
        at += -Math.log(1 - this.worldRandom()) * burst.meanSpacingMinutes * 60_000;
        if (at >= until) break;
        const seconds =
          burst.durationDistribution === "exponential"
            ? -Math.log(1 - this.worldRandom()) * burst.durationSeconds
            : burst.durationSeconds;
        this.bursts.push({ from: at, to: at + seconds * 1000, ...on, errorRate: burst.errorRate });
      }
    }
    this.bursts.sort((a, b) => a.from - b.from);
    const perPodMs = (60 * 60_000) / this.scenario.scraping.restartsPerPodHour;
    if (Number.isFinite(perPodMs))
      for (const pod of this.pods) {
        let at = this.drawnUntil;
        for (;;) {
          at += -Math.log(1 - this.worldRandom()) * perPodMs;
          if (at >= until) break;
          pod.restarts.push(at);
        }
      }
    this.drawnUntil = until;
  }

  /** The burst error rate each version suffers at `t` (0 outside bursts). */
  private burstRates(t: number): Record<Version, number> {
    let canary = 0;
    let stable = 0;
    for (const b of this.bursts) {
      if (b.from > t) break;
      if (b.to <= t) continue;
      if (b.canary) canary = 1 - (1 - canary) * (1 - b.errorRate);
      if (b.stable) stable = 1 - (1 - stable) * (1 - b.errorRate);
    }
    return { canary, stable };
  }

  /** The next instant after `t` where a rate, a burst or the pod's life changes. */
  private nextChange(t: number, pod: Pod): number {
    let next = Number.POSITIVE_INFINITY;
    for (const c of this.changes) if (c > t && c < next) next = c;
    for (const r of pod.restarts) if (r > t && r < next) next = r;
    for (const b of this.bursts) {
      if (b.from > next) break;
      if (b.from > t && b.from < next) next = b.from;
      if (b.to > t && b.to < next) next = b.to;
    }
    return next;
  }

  /** Moves time forward to `t`, serving requests and scraping on the way. */
  advanceTo(t: number): void {
    if (t <= this.now) return;
    if (t > this.drawnUntil - 60 * 60_000) this.drawAhead(this.drawnUntil + HORIZON_MS);
    const firstMinutesEnd = this.rolloutStart + FIRST_MINUTES_MS;
    // Every pod serves up to the 30-minute mark first, so the snapshot there is of one instant.
    if (this.canaryErrorsInFirstMinutes === undefined && t >= firstMinutesEnd && this.now < firstMinutesEnd) {
      for (const pod of this.pods) this.advancePod(pod, firstMinutesEnd);
      this.canaryErrorsInFirstMinutes = this.served.canary.errors;
    }
    for (const pod of this.pods) this.advancePod(pod, t);
    this.now = t;
  }

  /**
   * The canary's errors served by the 30-minute mark, once the rollout is over: from now to the
   * mark the weight no longer changes and nobody reads the metrics, so the pods and their scrapes
   * are skipped and each constant piece is one Poisson draw (the errors among Poisson arrivals
   * with a fixed error rate are Poisson). The world is not usable afterwards.
   */
  canaryErrorsByFirstMinutesEnd(): number {
    if (this.canaryErrorsInFirstMinutes !== undefined) return this.canaryErrorsInFirstMinutes;
    const end = this.rolloutStart + FIRST_MINUTES_MS;
    let errors = this.served.canary.errors;
    const share = this.weight / 100;
    let t = this.now;
    const anyPod = this.pods[0] as Pod;
    while (t < end && share > 0) {
      const next = Math.min(end, this.nextChange(t, { ...anyPod, restarts: [] }));
      const minute = (t - this.rolloutStart) / 60_000;
      const own = ratesAt(this.scenario.canary, minute, this.weight);
      const errorRate = 1 - (1 - own.errorRate) * (1 - this.burstRates(t).canary);
      const expected = requestRateAt(this.scenario, minute) * share * ((next - t) / 1000) * errorRate;
      if (expected > 0) errors += this.poisson(expected);
      t = next;
    }
    this.canaryErrorsInFirstMinutes = errors;
    return errors;
  }

  private advancePod(pod: Pod, t: number): void {
    while (pod.now < t) {
      const end = Math.min(t, pod.nextScrape, this.nextChange(pod.now, pod));
      if (end > pod.now) this.serve(pod, pod.now, end);
      pod.now = end;
      if (pod.restarts.includes(end)) pod.counters = zeroCounters();
      if (pod.now === pod.nextScrape) {
        this.scrape(pod, pod.now);
        pod.nextScrape += this.scrapeIntervalMs;
      }
    }
  }

  private serve(pod: Pod, from: number, to: number): void {
    // Pieces never straddle a weight change: the weight is set at `now`, after every pod reached it.
    if (from < this.weightChangedAt) throw new Error("a pod served past a weight change");
    const version = pod.version;
    const share = version === "canary" ? this.weight / 100 : 1 - this.weight / 100;
    const minute = (from - this.rolloutStart) / 60_000;
    const pods = this.scenario.scraping.podsPerVersion;
    const seconds = (to - from) / 1000;
    const users =
      share > 0 ? this.poisson((requestRateAt(this.scenario, minute) / pods) * share * seconds) : 0;
    const tester =
      version === "canary" && this.loadTesterRps > 0
        ? this.poisson((this.loadTesterRps / pods) * seconds)
        : 0;
    if (users + tester === 0) return;
    const own = ratesAt(this.scenario[version], minute, this.weight);
    const errorRate = 1 - (1 - own.errorRate) * (1 - this.burstRates(from)[version]);
    const draw = (requests: number) => {
      const errors = errorRate > 0 && requests > 0 ? this.binomial(requests, errorRate) : 0;
      const slowErrors = own.slowShare > 0 && errors > 0 ? this.binomial(errors, own.slowShare) : 0;
      const slowOk =
        own.slowShare > 0 && requests > errors ? this.binomial(requests - errors, own.slowShare) : 0;
      const c = pod.counters;
      c.ok += requests - errors;
      c.errors += errors;
      c.slowOk += slowOk;
      c.slowErrors += slowErrors;
      return { errors, slow: slowOk + slowErrors };
    };
    if (tester > 0) draw(tester);
    if (users === 0) return;
    const drawn = draw(users);
    const total = this.served[version];
    total.requests += users;
    total.errors += drawn.errors;
    total.slow += drawn.slow;
  }

  private scrape(pod: Pod, at: number): void {
    const missed = this.scrapeRandom() < this.scenario.scraping.missedScrapeShare;
    pod.scrapes.push({ at, ...pod.counters, ...(missed ? { missed: true } : {}) });
  }

  /** The pods' scrapes in [from, to], as a range selector selects them (missed ones included, flagged). */
  scrapesIn(pod: Pod, from: number, to: number): PodScrape[] {
    const list = pod.scrapes;
    let i = list.length - 1;
    while (i >= 0 && (list[i] as PodScrape).at > to) i--;
    const out: PodScrape[] = [];
    for (; i >= 0; i--) {
      const s = list[i] as PodScrape;
      if (s.at < from) break;
      out.push(s);
    }
    return out.reverse();
  }

  podsOf(version: Version): Pod[] {
    return this.pods.filter((p) => p.version === version);
  }
}
