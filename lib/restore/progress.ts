import type { RestoreProgress } from './restore';

/** How often onProgress is called at most, besides the start and the end of each phase. */
const PROGRESS_INTERVAL_MS = 250;

/** Calls onProgress at most every PROGRESS_INTERVAL_MS, and always at the start and the end. */
export class ProgressMeter {
  private bytes = 0;
  private readonly start = Date.now();
  private last = 0;

  constructor(
    private readonly phase: RestoreProgress['phase'],
    private readonly totalBytes: number,
    private readonly onProgress?: (progress: RestoreProgress) => void,
  ) {
    this.emit();
  }

  add(bytes: number): void {
    this.bytes += bytes;
    if (Date.now() - this.last >= PROGRESS_INTERVAL_MS) this.emit();
  }

  finish(): void {
    this.emit();
  }

  private emit(): void {
    if (!this.onProgress) return;
    this.last = Date.now();
    const seconds = (this.last - this.start) / 1000;
    const bytesPerSecond = seconds > 0 ? this.bytes / seconds : 0;
    const remaining = Math.max(0, this.totalBytes - this.bytes);
    const progress: RestoreProgress = { phase: this.phase, bytes: this.bytes, totalBytes: this.totalBytes, bytesPerSecond };
    if (bytesPerSecond > 0) progress.etaSeconds = remaining / bytesPerSecond;
    this.onProgress(progress);
  }
}

