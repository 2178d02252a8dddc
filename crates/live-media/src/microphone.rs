//! A microphone that may go away mid-show (a USB headset pulled out, a Bluetooth one
//! out of range, the sound server restarted) without taking the show with it.
//!
//! ```text
//! audiotestsrc (live silence) ─► caps ───────────────────────────────┐
//! [device ─► audioconvert ─► audioresample ─► caps] (a bin) ─────────┴─► audiomixer ─► …
//! ```
//! The mixer always has the silence to go on with: when the microphone fails, its bin
//! is cut loose and the show carries on silent, every connection and the recording
//! untouched; the microphone is looked for again every two seconds and, once it is
//! back, a new bin for it joins the mixer. Some microphones fail with an error when
//! they go; others (a microphone shared through PipeWire) just send nothing more: one
//! not heard from at two looks a second or more apart, the last more than three
//! seconds after it was last heard from, is taken for gone.
//!
//! The microphone joins the show once the show has started, and whenever it is found
//! again, started in a thread of its own, as a lost one is stopped: a device that
//! hangs holds its start (a PipeWire node whose program hung held it 30 s) and would
//! hold the show's every step with it. A microphone is said to be back once it is
//! heard, not once it is found: one that hangs stays lost, and is not said to come and
//! go every few seconds; one not heard at the show's start is said so.

use crate::devices::{DeviceKind, open};
use crate::{MediaError, element};
use gst::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

/// Elements of the microphone's bin are named so: their errors are not the show's.
pub(crate) const PREFIX: &str = "feza-microphone-";

/// How often a lost microphone is looked for.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// A microphone that sent nothing for this long (seen twice) is taken for gone.
const SILENT_FOR: Duration = Duration::from_secs(3);

/// A microphone found again is not looked for once more while this many of its
/// starts have not returned (a device that hangs: no pile of stuck threads).
const STARTS_HELD_AT_MOST: usize = 3;

pub(crate) struct Microphone {
    id: String,
    mixer: gst::Element,
    caps: gst::Caps,
    state: Mutex<State>,
    /// Starts of the microphone under way (each in a thread of its own).
    starting: Arc<AtomicUsize>,
}

enum State {
    Open {
        bin: gst::Bin,
        heard: Heard,
        /// When it was first seen not heard from lately, and when it was last heard
        /// from then.
        suspect: Option<(Instant, Instant)>,
        /// Found again after it was lost, and not heard yet.
        coming: Option<Coming>,
    },
    Lost {
        why: String,
        next_try: Instant,
        /// Whether the seller was told it is lost (not, for one never heard yet).
        told: bool,
    },
}

/// A microphone found again, being started, not yet heard: still lost to viewers.
struct Coming {
    /// Why it was lost.
    why: String,
    /// Whether the seller was told it was lost (not, at the show's start).
    told: bool,
    /// When it was found, and when it was last heard from then.
    found: Instant,
    last: Instant,
    /// How its start went, once it returns.
    started: mpsc::Receiver<Result<(), String>>,
}

/// When a microphone's bin last put out sound.
#[derive(Clone)]
struct Heard(Arc<Mutex<Instant>>);

impl Heard {
    fn now() -> Self {
        Self(Arc::new(Mutex::new(Instant::now())))
    }

    fn lock(&self) -> MutexGuard<'_, Instant> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Microphone {
    /// Opens microphone `id` (a clear error when there is none) and adds it, the
    /// silence and the mixer to `pipeline`. Returns the mixer to link onwards; it puts
    /// out `caps`.
    pub(crate) fn build(
        pipeline: &gst::Pipeline,
        id: &str,
        caps: &gst::Caps,
    ) -> Result<(Self, gst::Element), MediaError> {
        let mixer = element("audiomixer", "feza-audio-mixer")?;
        // Waits up to 0.5 s for the microphone's sound before mixing without it: on a
        // busy machine (a core held to 15 %) its sound came late enough to leave gaps
        // of 0.1 to 0.3 s every second or two. Every sink of the show runs unsynced,
        // so the wait delays nothing but the mixer's deadline.
        mixer.set_property("latency", 500_000_000u64);
        let silence = element("audiotestsrc", "feza-audio-silence")?;
        silence.set_property("is-live", true);
        silence.set_property_from_str("wave", "silence");
        let silence_caps = element("capsfilter", "feza-audio-silence-caps")?;
        silence_caps.set_property("caps", caps);
        // There is such a microphone (a clear error when there is none); it joins the
        // show once the show has started (`start`).
        drop(device_bin(id, caps)?);
        // The device's clock would be the show's, and go away with it (every other
        // part waiting on a clock that stopped): the show keeps the system's.
        pipeline.use_clock(Some(&gst::SystemClock::obtain()));
        pipeline.add_many([&silence, &silence_caps, &mixer])?;
        gst::Element::link_many([&silence, &silence_caps, &mixer])?;
        let mic = Self {
            id: id.to_owned(),
            mixer: mixer.clone(),
            caps: caps.clone(),
            state: Mutex::new(State::Lost {
                why: "it gave no sound yet".to_owned(),
                next_try: Instant::now(),
                told: false,
            }),
            starting: Arc::new(AtomicUsize::new(0)),
        };
        Ok((mic, mixer))
    }

    /// The show has started: the microphone joins it, started in a thread of its own
    /// (a device that hangs holds its start, for 30 s or for ever, and would hold the
    /// show's start with it). One not heard within a few seconds is said so, and
    /// looked for as one that went away.
    pub(crate) fn start(&self, pipeline: &gst::Pipeline) {
        self.retry(pipeline);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Why the microphone is not heard, while it is away (found again, until heard),
    /// once the seller was told.
    pub(crate) fn lost(&self) -> Option<String> {
        match &*self.state() {
            State::Open {
                coming: Some(Coming {
                    why, told: true, ..
                }),
                ..
            }
            | State::Lost {
                why, told: true, ..
            } => Some(why.clone()),
            _ => None,
        }
    }

    /// The show ends: a microphone found again but not heard (its start may hang) is
    /// let go of, quietly, so that the end of the show does not wait for its sound.
    pub(crate) fn end(&self, pipeline: &gst::Pipeline) {
        let mut state = self.state();
        if let State::Open {
            coming: Some(coming),
            ..
        } = &mut *state
        {
            coming.told = true;
            let why = coming.why.clone();
            self.lose(&mut state, pipeline, &why);
        }
    }

    /// An error from `src`, one of the microphone's elements: the microphone is cut
    /// loose (the show goes on, silent) and looked for again from now on. An error of
    /// a bin already cut loose changes nothing.
    pub(crate) fn failed(&self, pipeline: &gst::Pipeline, src: &gst::Object, why: &str) {
        let mut state = self.state();
        let State::Open { bin, .. } = &*state else {
            return;
        };
        if !src.has_as_ancestor(bin) && src != bin.upcast_ref::<gst::Object>() {
            return;
        }
        self.lose(&mut state, pipeline, why);
    }

    /// The microphone is gone: cut loose, and looked for from now on. One found again
    /// but never heard goes quietly: the seller was not told it was back. One never
    /// heard since the show started is said once.
    fn lose(&self, state: &mut State, pipeline: &gst::Pipeline, why: &str) {
        let mut why = why.to_owned();
        if let State::Open { bin, coming, .. } = state {
            match coming.take() {
                Some(Coming {
                    told: true,
                    why: was,
                    ..
                }) => {
                    tracing::debug!(microphone = %self.id, "the microphone found again is not heard ({why})");
                    why = was;
                }
                Some(Coming { told: false, .. }) => tracing::warn!(
                    microphone = %self.id,
                    "the microphone gives no sound ({why}): viewers hear silence until it \
                     does; check that no other program is using it and that it is not \
                     muted, or pick another with `live-cast devices`; live-cast keeps \
                     trying it"
                ),
                None => tracing::warn!(
                    microphone = %self.id,
                    "the microphone stopped ({why}): viewers hear silence until it is back; \
                     check its cable or connection, live-cast takes it back by itself"
                ),
            }
            remove(pipeline, bin, &self.mixer);
        }
        *state = State::Lost {
            why,
            next_try: Instant::now() + RETRY_EVERY,
            told: true,
        };
    }

    /// A microphone that sends nothing any more is taken for gone: not heard from at
    /// two looks a second or more apart, the last more than [`SILENT_FOR`] after it
    /// was last heard from. (A computer that stood still, froze or slept, has its
    /// microphone heard again right after: seen stale once, not twice.)
    fn watch(&self, state: &mut State, pipeline: &gst::Pipeline) {
        let State::Open {
            heard,
            suspect,
            coming,
            ..
        } = state
        else {
            return;
        };
        let (now, last) = (Instant::now(), *heard.lock());
        if let Some(c) = coming {
            // Found again: back once heard; let go of (quietly) if its start failed or
            // it is not heard within SILENT_FOR (a device that hangs).
            let failed = match c.started.try_recv() {
                Ok(Err(e)) => Some(format!("it would not start: {e}")),
                _ => None,
            };
            if last != c.last {
                if c.told {
                    tracing::info!(microphone = %self.id, "the microphone is back: viewers hear it again");
                } else {
                    tracing::debug!(microphone = %self.id, took = ?c.found.elapsed(), "the microphone is heard");
                }
                *coming = None;
            } else if let Some(why) = failed {
                self.lose(state, pipeline, &why);
                return;
            } else if now.duration_since(c.found) > SILENT_FOR {
                let why = format!("it sent no sound for {} s", SILENT_FOR.as_secs());
                self.lose(state, pipeline, &why);
                return;
            } else {
                return;
            }
        }
        if now.duration_since(last) <= SILENT_FOR {
            *suspect = None;
            return;
        }
        match *suspect {
            Some((since, then)) if then == last => {
                if now.duration_since(since) >= Duration::from_secs(1) {
                    let why = format!("it sent no sound for {} s", SILENT_FOR.as_secs());
                    self.lose(state, pipeline, &why);
                }
            }
            _ => *suspect = Some((now, last)),
        }
    }

    /// Notices a microphone that sends nothing any more; looks for a lost one (at most
    /// every two seconds) and, when it is there again, starts it (in a thread of its
    /// own) and lets the show hear it once it is heard.
    pub(crate) fn retry(&self, pipeline: &gst::Pipeline) {
        let mut state = self.state();
        self.watch(&mut state, pipeline);
        let State::Lost {
            why,
            next_try,
            told,
        } = &mut *state
        else {
            return;
        };
        if Instant::now() < *next_try || self.starting.load(Ordering::SeqCst) >= STARTS_HELD_AT_MOST
        {
            return;
        }
        *next_try = Instant::now() + RETRY_EVERY;
        let (why, told) = (why.clone(), *told);
        let opened = match device_bin(&self.id, &self.caps) {
            Ok(opened) => opened,
            Err(e) => {
                tracing::debug!(microphone = %self.id, "the microphone is not back yet: {e}");
                return;
            }
        };
        let (bin, last) = (opened.0.clone(), *opened.1.lock());
        // The pipeline's own state changes (the show's end) leave it alone while it
        // starts: they would wait for a start that hangs.
        bin.set_locked_state(true);
        let joined = pipeline
            .add(&bin)
            .map_err(|e| e.to_string())
            .and_then(|()| bin.link(&self.mixer).map_err(|e| e.to_string()))
            .and_then(|()| self.start_bin(&bin).map_err(|e| e.to_string()));
        match joined {
            Ok(started) => {
                tracing::debug!(microphone = %self.id, "the microphone is found again: starting it");
                *state = State::Open {
                    bin,
                    heard: opened.1,
                    suspect: None,
                    coming: Some(Coming {
                        why,
                        told,
                        found: Instant::now(),
                        last,
                        started,
                    }),
                };
            }
            Err(e) => {
                tracing::debug!(microphone = %self.id, "the microphone is not back yet: {e}");
                remove(pipeline, &bin, &self.mixer);
            }
        }
    }

    /// Starts `bin` in a thread of its own; how it went comes on the channel returned.
    fn start_bin(&self, bin: &gst::Bin) -> std::io::Result<mpsc::Receiver<Result<(), String>>> {
        let (tx, rx) = mpsc::channel();
        let (bin, starting) = (bin.clone(), self.starting.clone());
        starting.fetch_add(1, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("feza-microphone-start".into())
            .spawn({
                let starting = starting.clone();
                move || {
                    let started = bin.set_state(gst::State::Playing);
                    if started.is_ok() {
                        // Started: it goes with the show from now on.
                        bin.set_locked_state(false);
                    }
                    starting.fetch_sub(1, Ordering::SeqCst);
                    let _ = tx.send(started.map(drop).map_err(|e| e.to_string()));
                }
            });
        if spawned.is_err() {
            starting.fetch_sub(1, Ordering::SeqCst);
        }
        spawned.map(|_| rx)
    }
}

/// The microphone's own bin: the device, converted to `caps`; and when it last put
/// out sound.
fn device_bin(id: &str, caps: &gst::Caps) -> Result<(gst::Bin, Heard), MediaError> {
    let bin = gst::Bin::with_name(&format!("{PREFIX}bin"));
    let (device, _) = open(id, DeviceKind::Microphone, &format!("{PREFIX}device"))?;
    let convert = element("audioconvert", &format!("{PREFIX}convert"))?;
    let resample = element("audioresample", &format!("{PREFIX}resample"))?;
    let filter = element("capsfilter", &format!("{PREFIX}caps"))?;
    filter.set_property("caps", caps);
    bin.add_many([&device, &convert, &resample, &filter])?;
    gst::Element::link_many([&device, &convert, &resample, &filter])?;
    let pad = filter
        .static_pad("src")
        .ok_or_else(|| MediaError::Pipeline("capsfilter without a src pad".into()))?;
    let heard = Heard::now();
    let noted = heard.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        *noted.lock() = Instant::now();
        gst::PadProbeReturn::Ok
    });
    let ghost = gst::GhostPad::with_target(&pad)?;
    bin.add_pad(&ghost)?;
    Ok((bin, heard))
}

/// Gives `bin`'s mixer pad back, takes it out of the pipeline and stops it (in a
/// thread of its own: a device that hangs holds its stop too, as long as its start).
fn remove(pipeline: &gst::Pipeline, bin: &gst::Bin, mixer: &gst::Element) {
    if let Some(src) = bin.static_pad("src")
        && let Some(peer) = src.peer()
    {
        let _ = src.unlink(&peer);
        mixer.release_request_pad(&peer);
    }
    let _ = pipeline.remove(bin);
    let bin = bin.clone();
    let stopping = std::thread::Builder::new()
        .name("feza-microphone-stop".into())
        .spawn(move || {
            let _ = bin.set_state(gst::State::Null);
        });
    if let Err(e) = stopping {
        tracing::debug!("the microphone is not stopped: {e}");
    }
}
