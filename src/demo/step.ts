/** One line of the demo's summary. */
export interface DemoStep {
  step: string;
  ok: boolean;
  detail: string;
}

export type StepLog = (s: DemoStep) => void;
