//! Strings for a small regex subset: literals, escapes (`\d \w \s` and escaped punctuation),
//! classes with ranges and negation, `.`, groups with alternation, and the quantifiers
//! `? * + {n} {n,} {n,m}` (repetition kept small). Anything else — lookaround, backreferences,
//! anchors mid-pattern — makes [`generate`] return `None`.

use super::Rng;

const MAX_PATTERN: usize = 1024;
const MAX_REPEAT: u32 = 4;

pub fn generate(pattern: &str, rng: &mut Rng, out: &mut String) -> Option<()> {
    if pattern.len() > MAX_PATTERN {
        return None;
    }
    let chars: Vec<char> = pattern.chars().collect();
    let unanchored_start = chars.first() != Some(&'^');
    let unanchored_end = chars.last() != Some(&'$') || chars.len() >= 2 && chars[chars.len() - 2] == '\\';
    let body = &chars[usize::from(!unanchored_start)..chars.len() - usize::from(!unanchored_end)];
    let mut p = Parser { chars: body, at: 0, rng, steps: 0 };
    p.alternation(out)?;
    (p.at == body.len()).then_some(())
}

struct Parser<'a, 'r> {
    chars: &'a [char],
    at: usize,
    rng: &'r mut Rng,
    steps: u32,
}

impl Parser<'_, '_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    /// `a|b|c` at this level: generates one branch, skips the others.
    fn alternation(&mut self, out: &mut String) -> Option<()> {
        let mut branches = vec![self.at];
        let mut depth = 0usize;
        let mut i = self.at;
        while i < self.chars.len() {
            match self.chars[i] {
                '\\' => i += 1,
                '[' => {
                    while i < self.chars.len() && self.chars[i] != ']' {
                        i += usize::from(self.chars[i] == '\\') + 1;
                    }
                }
                '(' => depth += 1,
                ')' if depth == 0 => break,
                ')' => depth -= 1,
                '|' if depth == 0 => branches.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        let end = i;
        let start = branches[self.rng.below(branches.len() as u64) as usize];
        self.at = start;
        while self.at < end && self.peek() != Some('|') {
            self.piece(out)?;
        }
        self.at = end;
        Some(())
    }

    fn piece(&mut self, out: &mut String) -> Option<()> {
        self.steps += 1;
        if self.steps > 10_000 {
            return None;
        }
        let atom_start = self.at;
        // Parse the atom once to find its end, then generate it as often as quantified.
        let mut scratch = String::new();
        self.atom(&mut scratch)?;
        let atom_end = self.at;
        let (lo, hi) = self.quantifier()?;
        let after = self.at;
        let times = lo + self.rng.below(u64::from(hi - lo) + 1) as u32;
        for n in 0..times {
            if n == 0 {
                out.push_str(&scratch);
            } else {
                self.at = atom_start;
                self.atom(out)?;
                debug_assert_eq!(self.at, atom_end);
            }
        }
        self.at = after;
        Some(())
    }

    fn quantifier(&mut self) -> Option<(u32, u32)> {
        let q = match self.peek() {
            Some('?') => (0, 1),
            Some('*') => (0, MAX_REPEAT),
            Some('+') => (1, MAX_REPEAT),
            Some('{') => {
                let close = self.chars[self.at..].iter().position(|c| *c == '}')? + self.at;
                let inner: String = self.chars[self.at + 1..close].iter().collect();
                let (lo, hi) = match inner.split_once(',') {
                    None => {
                        let n = inner.trim().parse::<u32>().ok()?;
                        (n, n)
                    }
                    Some((l, "")) => {
                        let n = l.trim().parse::<u32>().ok()?;
                        (n, n + MAX_REPEAT)
                    }
                    Some((l, h)) => (l.trim().parse().ok()?, h.trim().parse().ok()?),
                };
                if lo > hi || lo > 256 {
                    return None;
                }
                self.at = close;
                (lo, hi.min(lo + MAX_REPEAT))
            }
            _ => return Some((1, 1)),
        };
        self.at += 1;
        if self.peek() == Some('?') || self.peek() == Some('+') {
            self.at += 1; // lazy or possessive: the same strings
        }
        Some(q)
    }

    fn atom(&mut self, out: &mut String) -> Option<()> {
        let c = self.peek()?;
        self.at += 1;
        match c {
            '(' => {
                if self.peek() == Some('?') {
                    // Only the non-capturing form.
                    if self.chars.get(self.at + 1) != Some(&':') {
                        return None;
                    }
                    self.at += 2;
                }
                self.alternation(out)?;
                (self.peek() == Some(')')).then_some(())?;
                self.at += 1;
            }
            '[' => self.class(out)?,
            '.' => out.push((b'a' + self.rng.below(26) as u8) as char),
            '\\' => {
                let e = self.peek()?;
                self.at += 1;
                out.push(self.escape(e)?);
            }
            '^' | '$' | '|' | ')' | '*' | '+' | '?' | '{' => return None,
            other => out.push(other),
        }
        Some(())
    }

    fn escape(&mut self, e: char) -> Option<char> {
        Some(match e {
            'd' => (b'0' + self.rng.below(10) as u8) as char,
            'w' => *b"abcxyzABC019_".get(self.rng.below(13) as usize)? as char,
            's' => ' ',
            'D' | 'W' | 'S' => return None,
            'n' => '\n',
            't' => '\t',
            c if c.is_ascii_punctuation() => c,
            _ => return None,
        })
    }

    fn class(&mut self, out: &mut String) -> Option<()> {
        let negated = self.peek() == Some('^');
        if negated {
            self.at += 1;
        }
        let mut ranges: Vec<(char, char)> = Vec::new();
        let mut first = true;
        loop {
            let c = self.peek()?;
            self.at += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match c {
                '\\' => {
                    let e = self.peek()?;
                    self.at += 1;
                    match e {
                        'd' => {
                            ranges.push(('0', '9'));
                            continue;
                        }
                        'w' => {
                            ranges.extend([('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')]);
                            continue;
                        }
                        's' => {
                            ranges.push((' ', ' '));
                            continue;
                        }
                        e if e.is_ascii_punctuation() => e,
                        _ => return None,
                    }
                }
                c => c,
            };
            if self.peek() == Some('-') && self.chars.get(self.at + 1).is_some_and(|n| *n != ']') {
                let hi = self.chars[self.at + 1];
                self.at += 2;
                if hi < lo {
                    return None;
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        if negated {
            // A plain letter or digit the class does not name.
            let c = ('a'..='z').chain('0'..='9').find(|c| !ranges.iter().any(|(l, h)| (l..=h).contains(&c)))?;
            out.push(c);
            return Some(());
        }
        let (lo, hi) = ranges[self.rng.below(ranges.len() as u64) as usize];
        let span = u64::from(hi) - u64::from(lo) + 1;
        out.push(char::from_u32(lo as u32 + self.rng.below(span) as u32)?);
        Some(())
    }
}
