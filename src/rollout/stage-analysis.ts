/**
 * One stage's analysis: from the weight change, read the counts every interval, add each interval's
 * window to the canary's evidence, ask the judge, and watch that nobody else changed the weights.
 * Returns how the stage ended; the engine acts on it.
 */
import type { Evidence } from "../analysis/evidence.ts";
import { type CheckInput, judgeCheck, type Observation, type Verdict } from "../analysis/judge.ts";
import type { EvidenceSettings, JudgeSettings } from "../analysis/types.ts";
import { errorMessage } from "../error-message.ts";
import { abortable } from "./abortable.ts";
import { type CustomChecksPort, failingCheck } from "./custom-checks.ts";
import type { StageDecision } from "./ending.ts";
import type { Clock, EventSink, MetricsMark, MetricsPort, TrafficPort, TrafficView } from "./ports.ts";
import {
  type CountedSoFar,
  countedAfter,
  MetricsOutage,
  nothingCounted,
  stableAboveLimit,
  windowOf,
} from "./stage-reads.ts";
import { StepBack, type StepBackOption } from "./step-back.ts";
import { TrafficShareWatch } from "./traffic-share.ts";
import { describeEdit, PersonEditError, weightsOtherThan } from "./transitions.ts";

export interface StageAnalysisPorts {
  metrics: MetricsPort;
  /** Custom checks (issue 23), judged at every read beside the built-in signals. */
  checks?: CustomChecksPort;
  traffic: TrafficPort;
  clock: Clock;
  events: EventSink;
  signal?: AbortSignal;
}

export interface StageAnalysisInput {
  index: number;
  weight: number;
  /**
   * An adopted split's weights, route by route as found: each route must keep its own (a person's
   * split made meanwhile wins). Unset: every route at `weight`.
   */
  foundWeights?: readonly number[];
  final: boolean;
  /** The stage before the last at 100 %: the last one with stable beside the canary. */
  lastBesideStable?: boolean;
  /** When the weight was written: counting and stage time start here. */
  changedAt: number;
  /** Counters taken just before the weight change; undefined when they could not be read. */
  mark?: MetricsMark;
  evidence: Evidence;
  intervalMs: number;
  /** Proxies' propagation plus one scrape: counts before it mix in requests at the old weight. */
  settleMs: number;
  judge: JudgeSettings;
  evidenceSettings: EvidenceSettings;
  /**
   * At 100 %: the weight to step back to when the canary crosses the limit with no stable to compare
   * (the stage before), and the write that moves the weights (it throws PersonEditError on a
   * person's edit). Absent: no step back (a single stage, or a stage below 100).
   */
  stepBack?: StepBackOption;
}

export interface StageAnalysis {
  verdict?: Verdict;
  decision: StageDecision;
  reason: string;
  evidence: Evidence;
  /** For `halted`: the weights found. */
  found?: TrafficView;
  /** The weight on the routes when the stage ended (below the stage's after a step back). */
  weight: number;
}

export async function analyseStage(
  ports: StageAnalysisPorts,
  input: StageAnalysisInput,
): Promise<StageAnalysis> {
  return new StageAnalyser(ports, input).run();
}

/** One read of a stage: when it was issued, and the weight and stage time it was judged at. */
interface Read {
  issuedAt: number;
  /** Reads so far at this weight, this one included. */
  check: number;
  weight: number;
  elapsedMs: number;
}

/** The state of one stage's analysis between reads. */
class StageAnalyser {
  /** The weight on the routes and when it last changed, with the step back from 100 % if any. */
  private readonly stepBack: StepBack;
  private readonly outage: MetricsOutage;
  private readonly share: TrafficShareWatch;
  private evidence: Evidence;
  /** The counters at the weight change (or at the first read that could take them): counts start here. */
  private mark: MetricsMark | undefined;
  /** Each version's counts since the mark, as of the last complete read: a window is what a read adds. */
  private counted: CountedSoFar;
  /** Reads at the current weight (the judge waits a few before it calls "no canary traffic"). */
  private reads = 0;
  /** When the last complete read was issued: the next window's length counts from here. */
  private lastReadAt: number;
  private readonly ports: StageAnalysisPorts;
  private readonly input: StageAnalysisInput;

  constructor(ports: StageAnalysisPorts, input: StageAnalysisInput) {
    this.ports = ports;
    this.input = input;
    this.stepBack = new StepBack(input, input.evidenceSettings, input.stepBack);
    this.outage = new MetricsOutage(ports.clock, input.intervalMs, input.changedAt);
    this.share = new TrafficShareWatch(input.settleMs, input.foundWeights);
    this.evidence = input.evidence;
    this.mark = input.mark;
    this.counted = nothingCounted(input.evidence.latency !== undefined);
    this.lastReadAt = input.changedAt;
  }

  async run(): Promise<StageAnalysis> {
    for (;;) {
      const ended = await this.readOnce();
      if (ended) return ended;
    }
  }

  /** One interval: read the routes and the metrics, judge, act. How the stage ended, or undefined. */
  private async readOnce(): Promise<StageAnalysis | undefined> {
    const { clock, signal, events } = this.ports;
    await clock.sleep(this.outage.nextWaitMs(), signal);
    const read = this.beginRead();
    const { weight } = read;
    const found = await this.readRoutes();
    if (found && edited(found, weight, this.input.foundWeights))
      return {
        decision: "halted",
        reason: describeEdit(found, weight),
        evidence: this.evidence,
        found,
        weight,
      };
    if (found?.notRouting !== undefined) return this.notRouting(found.notRouting, weight);

    const judged = this.mark ? await this.judgeRead(read, this.mark) : await this.startCounting(read);
    const verdict = await this.withChecks(judged, read);
    await events.emit({
      type: "analysis",
      at: clock.now().toISOString(),
      stage: this.input.index,
      weight,
      elapsedMs: read.elapsedMs,
      verdict,
    });

    const downMs = this.outage.downMsAfter(verdict, read.issuedAt);
    if (downMs !== undefined) {
      const reason = `${verdict.reason} (failing for ${Math.round(downMs / 1000)} s)`;
      return { verdict, decision: "unreachable", reason, evidence: this.evidence, weight };
    }
    const warning = this.share.warningAfter(read, this.counted, found, this.mark !== undefined);
    if (warning) await events.emit({ type: "warning", at: clock.now().toISOString(), message: warning });

    // A step back, or back up after one: the weight changes and the stage's time starts again.
    const move = this.stepBack.moveFor(verdict);
    if (move !== undefined) return this.moveWeight(move, verdict, weight);
    if (verdict.decision !== "continue")
      return { verdict, decision: verdict.decision, reason: verdict.reason, evidence: this.evidence, weight };
    return undefined;
  }

  /**
   * The custom checks at this read, reported; a failing one in fail mode fails the stage. Not asked
   * when the built-in signals already fail it: the rollback comes first. They count from the latest
   * move, as the built-in counts do: from the stage's weight change, or from a step back or the
   * return up inside the stage, so that no window of theirs spans two weights.
   */
  private async withChecks(verdict: Verdict, read: Read): Promise<Verdict> {
    const { checks, clock, signal, events } = this.ports;
    if (!checks || verdict.decision === "fail") return verdict;
    const now = clock.now();
    const results = await checks.judge(
      { stage: this.input.index, weight: read.weight, changedAt: this.stepBack.changedAt, now },
      signal,
    );
    await events.emit({ type: "checks", at: now.toISOString(), stage: this.input.index, checks: results });
    const failing = failingCheck(results);
    if (!failing) return verdict;
    return {
      ...verdict,
      decision: "fail",
      rule: "custom-check",
      reason: `Check ${failing.name}: ${failing.summary}`,
    };
  }

  /**
   * The routes carry nothing whatever their weights (a parent no longer accepts the HTTPRoute):
   * the silence that follows says nothing of the canary, and passing a stage on it raised a canary
   * on a route that served no one (fault 14d). Ended as an outage, so `on-unreachable` decides.
   */
  private notRouting(why: string, weight: number): StageAnalysis {
    const reason = `${why}; the routes carry no traffic, so the canary cannot be judged`;
    return { decision: "unreachable", reason, evidence: this.evidence, weight };
  }

  private beginRead(): Read {
    const issuedAt = this.ports.clock.now().getTime();
    this.reads += 1;
    const { weight, changedAt } = this.stepBack;
    return { issuedAt, check: this.reads, weight, elapsedMs: issuedAt - changedAt };
  }

  /** The routes as they are now; undefined when they could not be read. */
  private async readRoutes(): Promise<TrafficView | undefined> {
    const { traffic, signal } = this.ports;
    return abortable(traffic.read(signal), signal).catch((error: unknown) => {
      if (signal?.aborted) throw error;
      return undefined; // a failed read is retried at the next interval; it says nothing of the canary
    });
  }

  /** With no counters to count from yet (they could not be read at the weight change): take them now. */
  private async startCounting(read: Read): Promise<Verdict> {
    const { metrics, clock, signal } = this.ports;
    try {
      this.mark = await abortable(metrics.start(clock.now(), signal), signal);
      return { decision: "continue", rule: "waiting", reason: "Counting from now", signals: [] };
    } catch (error) {
      if (signal?.aborted) throw error;
      const message = errorMessage(error);
      const problem = (error as { problem?: string }).problem ?? "unreachable";
      return judgeCheck(
        {
          weight: read.weight,
          final: this.input.final && !this.stepBack.below,
          elapsedMs: read.elapsedMs,
          observation: { ok: false, problem, message },
          evidence: this.evidence,
          stableServed: false,
        },
        this.input.judge,
      );
    }
  }

  /** Reads the counts since the mark, adds the window to the evidence, and asks the judge. */
  private async judgeRead(read: Read, mark: MetricsMark): Promise<Verdict> {
    const { metrics, clock, signal } = this.ports;
    const observation = await abortable(metrics.observeSince(mark, clock.now(), signal), signal);
    const stable = this.takeIn(observation, read);
    const stepBackTo = this.stepBack.offer();
    if (!this.stepBack.judges(read.issuedAt)) {
      const reason = `Stepped back to ${read.weight} %: judging beside stable from settle-time on`;
      return { decision: "continue", rule: "waiting", reason, signals: [] };
    }
    return judgeCheck(
      {
        weight: read.weight,
        final: this.input.final && !this.stepBack.below,
        ...(this.input.lastBesideStable ? { lastBesideStable: true } : {}),
        elapsedMs: read.elapsedMs,
        observation,
        evidence: this.evidence,
        stableServed: stable.served,
        check: read.check,
        stableAboveLimit: stable.aboveLimit,
        ...(stable.latest ? { latest: stable.latest } : {}),
        ...(stepBackTo !== undefined ? { stepBackTo } : {}),
      },
      this.input.judge,
    );
  }

  /**
   * A complete read's window joins the evidence (partial data adds none); returns what the window
   * showed of stable, for the judge.
   */
  private takeIn(
    observation: Observation,
    read: Read,
  ): { served: boolean; aboveLimit: boolean; latest?: CheckInput["latest"] } {
    if (!observation.ok || observation.partial.length > 0) return { served: false, aboveLimit: false };
    const window = windowOf(observation, this.counted, read.weight, read.issuedAt - this.lastReadAt);
    this.lastReadAt = read.issuedAt;
    this.evidence = this.stepBack.add(this.evidence, window, read.issuedAt);
    this.counted = countedAfter(observation, this.counted);
    return {
      served: (window.stable?.requests ?? 0) > 0,
      aboveLimit: stableAboveLimit(window.stable, this.input.evidenceSettings.maxErrorRate),
      latest: window.stable ? { canary: window.canary, stable: window.stable } : { canary: window.canary },
    };
  }

  /**
   * After a step back, counting starts again from the first samples taken after the move. Counting
   * on from the last read's instant would interpolate across the move: Prometheus' samples are
   * spread over the scrape interval, so a window starting just after the move still carries a share
   * of the canary's increments served at 100 %, when stable served nothing, and an incident that
   * ended just before the step back would read as the canary's own. A mark that cannot be taken is
   * taken at the next read instead.
   */
  private async countAfterMove(): Promise<void> {
    const { metrics, clock, signal } = this.ports;
    const at = clock.now();
    this.mark = await abortable(metrics.start(at, signal, { afterMove: true }), signal).catch(
      (error: unknown) => {
        if (signal?.aborted) throw error;
        return undefined;
      },
    );
    this.counted = nothingCounted(this.input.evidence.latency !== undefined);
    this.lastReadAt = at.getTime();
  }

  /** Moves the weight; undefined to read on at the new weight, or the halt a person's edit causes. */
  private async moveWeight(to: number, verdict: Verdict, weight: number): Promise<StageAnalysis | undefined> {
    try {
      await this.stepBack.move(to, this.evidence, verdict.reason, this.ports.clock.now().getTime());
    } catch (error) {
      if (error instanceof PersonEditError)
        return {
          decision: "halted",
          reason: error.message,
          evidence: this.evidence,
          found: error.view,
          weight,
        };
      throw error;
    }
    this.reads = 0;
    this.share.restart();
    if (to < weight) await this.countAfterMove();
    return undefined;
  }
}

/** Someone else's edit: a route at another weight than this run's, or than the one found on it. */
function edited(view: TrafficView, weight: number, foundWeights: readonly number[] | undefined): boolean {
  if (!foundWeights) return weightsOtherThan(view, [weight]);
  return view.weights.length !== foundWeights.length || view.weights.some((w, i) => w !== foundWeights[i]);
}
