/**
 * Whether the transcript keeps following new output. Scroll events arrive a frame late, so when new
 * output lands the view may already be where the reader scrolled to while onScroll has not heard
 * of it yet: a view that left the place the last follow put it, and is not at the bottom, is the
 * reader's, not new output's.
 */
/** Within this many pixels of the bottom counts as "at the bottom". */
export const STICK_PX = 40;

export interface ScrollBox {
  scrollTop: number;
  scrollHeight: number;
  clientHeight: number;
}

export function atBottom(el: ScrollBox): boolean {
  return el.scrollHeight - el.scrollTop - el.clientHeight < STICK_PX;
}

/** After new output: follow it, or stop because the reader scrolled up (followedTo: the last follow's scrollTop). */
export function afterOutput(el: ScrollBox, followedTo: number): 'follow' | 'away' {
  return !atBottom(el) && el.scrollTop < followedTo - STICK_PX ? 'away' : 'follow';
}
