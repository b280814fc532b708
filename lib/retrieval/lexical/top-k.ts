/** Selecting the best `k` scored chunk slots of a search without sorting every candidate. */

export interface ScoredSlot {
  slot: number;
  score: number;
}

/** Bounded min-heap keeping the best `k` (score, slot) pairs; lower slot wins a tie. */
export class TopK {
  private readonly slots: Int32Array;
  private readonly scores: Float64Array;
  private size = 0;

  constructor(private readonly k: number) {
    this.slots = new Int32Array(k);
    this.scores = new Float64Array(k);
  }

  offer(slot: number, score: number): void {
    if (this.k === 0) return;
    if (this.size < this.k) {
      this.slots[this.size] = slot;
      this.scores[this.size] = score;
      this.up(this.size++);
    } else if (this.better(score, slot, this.scores[0]!, this.slots[0]!)) {
      this.slots[0] = slot;
      this.scores[0] = score;
      this.down(0);
    }
  }

  sorted(): ScoredSlot[] {
    const out: ScoredSlot[] = [];
    for (let i = 0; i < this.size; i++) out.push({ slot: this.slots[i]!, score: this.scores[i]! });
    return out.sort((x, y) => y.score - x.score || x.slot - y.slot);
  }

  private better(scoreA: number, slotA: number, scoreB: number, slotB: number): boolean {
    return scoreA > scoreB || (scoreA === scoreB && slotA < slotB);
  }

  private up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.better(this.scores[parent]!, this.slots[parent]!, this.scores[i]!, this.slots[i]!)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let worst = i;
      if (
        left < this.size &&
        this.better(this.scores[worst]!, this.slots[worst]!, this.scores[left]!, this.slots[left]!)
      )
        worst = left;
      if (
        right < this.size &&
        this.better(this.scores[worst]!, this.slots[worst]!, this.scores[right]!, this.slots[right]!)
      )
        worst = right;
      if (worst === i) return;
      this.swap(i, worst);
      i = worst;
    }
  }

  private swap(a: number, b: number): void {
    const slot = this.slots[a]!;
    const score = this.scores[a]!;
    this.slots[a] = this.slots[b]!;
    this.scores[a] = this.scores[b]!;
    this.slots[b] = slot;
    this.scores[b] = score;
  }
}
