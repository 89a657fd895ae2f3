//! Progress while waiting: live bars on a terminal (stderr), timestamped lines on stdout otherwise.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use jiff::Timestamp;

use crate::milvus::Release;
use crate::scale::wait::{Watched, component, describe};

/// Progress output: bars on a terminal (stderr), timestamped lines on stdout otherwise.
pub struct Progress {
    bars: Option<(MultiProgress, BTreeMap<String, ProgressBar>)>,
    last: BTreeMap<String, String>,
    quiet: bool,
}

impl Progress {
    /// `quiet` for structured output: nothing is printed while waiting.
    pub fn new(quiet: bool) -> Self {
        let bars =
            (!quiet && std::io::stderr().is_terminal()).then(|| (MultiProgress::new(), BTreeMap::new()));
        Progress { bars, last: BTreeMap::new(), quiet }
    }

    pub fn show(&mut self, release: &Release, watched: &[Watched]) {
        if self.quiet {
            return;
        }
        for w in watched {
            let line = describe(release, &w.component, w.target);
            let ready = component(release, &w.component).map_or(0, |c| c.ready);
            match &mut self.bars {
                Some((multi, bars)) => {
                    let bar = bars.entry(w.component.clone()).or_insert_with(|| {
                        let bar = multi.add(ProgressBar::new(w.target.max(1) as u64));
                        bar.set_style(
                            ProgressStyle::with_template("{spinner} [{bar:20}] {msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar())
                                .progress_chars("=> "),
                        );
                        bar.enable_steady_tick(Duration::from_millis(120));
                        bar
                    });
                    bar.set_length(w.target.max(1) as u64);
                    bar.set_position(ready.max(0) as u64);
                    bar.set_message(line);
                }
                None => {
                    if self.last.get(&w.component) != Some(&line) {
                        println!("{} {line}", Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ"));
                        self.last.insert(w.component.clone(), line);
                    }
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Some((_, bars)) = &mut self.bars {
            for bar in bars.values() {
                bar.finish();
            }
            bars.clear();
        }
    }
}
