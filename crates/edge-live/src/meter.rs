//! What the technician needs to see of the video going into the packager, whatever the
//! protocol: size, frame rate, keyframe interval (the numbers an encoder is most often set
//! wrong on), and the newest keyframe (the event's thumbnail). Measured here, on media time,
//! so RTMP, SRT, RTSP, capture and transcoded events are measured the same way.

use std::collections::VecDeque;
use std::time::Duration;

use edge_media::{AccessUnit, MediaEvent, Track, TrackKind};

/// Frames the frame rate is averaged over (about two seconds at 30 fps).
const RATE_WINDOW: usize = 64;

/// The video input as measured (getStatus `videoInput`).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInput {
    /// RFC 6381 codec string (`avc1.64001f`).
    pub codec: String,
    pub width: u16,
    pub height: u16,
    /// Frames per second over the last ~64 frames; `None` until two frames arrived.
    pub frame_rate: Option<f64>,
    /// Media time between the last two keyframes; `None` until two keyframes arrived.
    pub key_frame_interval: Option<Duration>,
    /// Frames since the track (re)started.
    pub frames: u64,
}

/// The newest keyframe of the measured track, with its decoder configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyframe {
    pub track: Track,
    pub unit: AccessUnit,
}

/// Measures the first video track of a media stream. Pure: fed the events, read at will.
#[derive(Debug, Default)]
pub struct VideoMeter {
    track: Option<Track>,
    dts: VecDeque<i64>,
    last_key_dts: Option<i64>,
    gop_ticks: Option<i64>,
    frames: u64,
    keyframe: Option<AccessUnit>,
}

impl VideoMeter {
    pub fn observe(&mut self, ev: &MediaEvent) {
        match ev {
            MediaEvent::Tracks(tracks) => {
                let video = tracks.iter().filter(|t| t.kind() == TrackKind::Video).min_by_key(|t| t.id);
                if video != self.track.as_ref() {
                    *self = VideoMeter { track: video.cloned(), ..Default::default() };
                }
            }
            MediaEvent::Unit(u) => {
                if self.track.as_ref().is_none_or(|t| t.id != u.track) {
                    return;
                }
                self.frames += 1;
                if self.dts.back().is_some_and(|&last| u.dts <= last) {
                    // Time went back or stood still: measure afresh.
                    self.dts.clear();
                    self.last_key_dts = None;
                }
                if self.dts.len() == RATE_WINDOW {
                    self.dts.pop_front();
                }
                self.dts.push_back(u.dts);
                if u.keyframe {
                    if let Some(prev) = self.last_key_dts {
                        self.gop_ticks = Some(u.dts - prev);
                    }
                    self.last_key_dts = Some(u.dts);
                    self.keyframe = Some(u.clone());
                }
            }
            // A new publisher: the timeline restarts; keep the picture, measure afresh.
            MediaEvent::Discontinuity | MediaEvent::End => {
                self.dts.clear();
                self.last_key_dts = None;
                self.gop_ticks = None;
            }
        }
    }

    pub fn reading(&self) -> Option<VideoInput> {
        let t = self.track.as_ref()?;
        let ts = f64::from(t.timescale.max(1));
        let frame_rate = match (self.dts.front(), self.dts.back()) {
            (Some(&a), Some(&b)) if b > a => Some((self.dts.len() - 1) as f64 * ts / (b - a) as f64),
            _ => None,
        };
        Some(VideoInput {
            codec: t.codec_string.clone(),
            width: t.width,
            height: t.height,
            frame_rate: frame_rate.map(|f| (f * 100.0).round() / 100.0),
            key_frame_interval: self.gop_ticks.map(|g| Duration::from_secs_f64(g as f64 / ts)),
            frames: self.frames,
        })
    }

    pub fn keyframe(&self) -> Option<Keyframe> {
        Some(Keyframe { track: self.track.clone()?, unit: self.keyframe.clone()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use edge_media::Codec;
    use std::time::Instant;

    fn track(id: u32, codec: Codec) -> Track {
        Track {
            id,
            codec,
            timescale: 90_000,
            config: Bytes::from_static(b"cfg"),
            codec_string: if codec == Codec::Aac { "mp4a.40.2".into() } else { "avc1.64001f".into() },
            width: 1280,
            height: 720,
            sample_rate: 48_000,
            channels: 2,
            bitrate: 0,
        }
    }

    fn unit(track: u32, dts: i64, keyframe: bool) -> MediaEvent {
        MediaEvent::Unit(AccessUnit {
            track,
            dts,
            pts: dts,
            keyframe,
            data: Bytes::from(dts.to_le_bytes().to_vec()),
            arrival: Instant::now(),
        })
    }

    #[test]
    fn measures_frame_rate_and_keyframe_interval_of_the_video_track() {
        let mut m = VideoMeter::default();
        assert_eq!(m.reading(), None);
        m.observe(&MediaEvent::Tracks(vec![track(2, Codec::Aac), track(1, Codec::H264)]));
        // 29.97 fps (3003 ticks), a keyframe every 60 frames; audio units are ignored.
        for i in 0..200i64 {
            m.observe(&unit(1, i * 3003, i % 60 == 0));
            m.observe(&unit(2, i * 1920, true));
        }
        let r = m.reading().unwrap();
        assert_eq!((r.width, r.height, r.codec.as_str(), r.frames), (1280, 720, "avc1.64001f", 200));
        assert_eq!(r.frame_rate, Some(29.97));
        let gop = r.key_frame_interval.unwrap().as_secs_f64();
        assert!((gop - 60.0 * 3003.0 / 90_000.0).abs() < 1e-6, "{gop}");
        let k = m.keyframe().unwrap();
        assert_eq!((k.track.id, k.unit.dts), (1, 180 * 3003));
    }

    #[test]
    fn restarts_after_a_discontinuity_or_new_tracks_and_never_divides_by_zero() {
        let mut m = VideoMeter::default();
        m.observe(&MediaEvent::Tracks(vec![track(1, Codec::H264)]));
        m.observe(&unit(1, 0, true));
        let r = m.reading().unwrap();
        assert_eq!((r.frame_rate, r.key_frame_interval), (None, None));
        m.observe(&unit(1, 0, false)); // a repeated timestamp
        assert_eq!(m.reading().unwrap().frame_rate, None);
        m.observe(&unit(1, 9000, true));
        m.observe(&MediaEvent::Discontinuity);
        let r = m.reading().unwrap();
        assert_eq!((r.frame_rate, r.key_frame_interval), (None, None));
        assert!(m.keyframe().is_some(), "the last picture is kept across a reconnect");
        let mut other = track(1, Codec::H264);
        other.width = 1920;
        m.observe(&MediaEvent::Tracks(vec![other]));
        assert_eq!(m.reading().unwrap().width, 1920);
        assert!(m.keyframe().is_none(), "a keyframe of other parameters is not decodable with the new ones");
    }
}
