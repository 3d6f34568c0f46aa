//! CMAF boxes: the init segment of one track and its media segments, written with mp4-atom.

use bytes::Bytes;
use edge_media::{Track, TrackKind};
use mp4_atom::{
    Dinf, Dref, Encode, Ftyp, Hdlr, Mdhd, Mdia, Mfhd, Minf, Moof, Moov, Mvex, Mvhd, Smhd, Stbl, Stco, Stsd, Styp, Tfdt,
    Tfhd, Tkhd, Traf, Trak, Trex, Trun, TrunEntry, Url, Vmhd,
};

/// `sample_depends_on = 2` (an I-frame / every audio frame).
pub(crate) const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
pub(crate) const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// ftyp + moov for one track (CMAF: one track per init segment).
pub(crate) fn init_segment(track: &Track, entry: mp4_atom::Codec) -> Result<Bytes, mp4_atom::Error> {
    let video = track.kind() == TrackKind::Video;
    let ftyp = Ftyp {
        major_brand: b"cmfc".into(),
        minor_version: 0,
        compatible_brands: vec![b"cmfc".into(), b"iso6".into(), b"cmf2".into()],
    };
    let minf = Minf {
        vmhd: video.then(Vmhd::default),
        smhd: (!video).then(Smhd::default),
        dinf: Dinf { dref: Dref { entries: vec![Url::default().into()] } },
        stbl: Stbl { stsd: Stsd { codecs: vec![entry] }, stco: Some(Stco::default()), ..Default::default() },
        ..Default::default()
    };
    let trak = Trak {
        tkhd: Tkhd {
            track_id: track.id,
            enabled: true,
            in_movie: true,
            volume: if video { 0 } else { 1 }.into(),
            width: if video { track.width } else { 0 }.into(),
            height: if video { track.height } else { 0 }.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd { timescale: track.timescale, language: "und".into(), ..Default::default() },
            hdlr: Hdlr {
                handler: if video { b"vide" } else { b"soun" }.into(),
                name: if video { "VideoHandler" } else { "SoundHandler" }.into(),
            },
            minf,
        },
        ..Default::default()
    };
    let moov = Moov {
        mvhd: Mvhd { timescale: track.timescale, next_track_id: track.id + 1, ..Default::default() },
        mvex: Some(Mvex {
            mehd: None,
            trex: vec![Trex {
                track_id: track.id,
                default_sample_description_index: 1,
                default_sample_duration: 0,
                default_sample_size: 0,
                default_sample_flags: 0,
            }],
        }),
        trak: vec![trak],
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1024);
    ftyp.encode(&mut out)?;
    moov.encode(&mut out)?;
    Ok(out.into())
}

/// One sample of a segment being written.
pub(crate) struct SampleOut<'a> {
    pub duration: u32,
    pub flags: u32,
    /// Composition offset (PTS - DTS, shifted per period); `None` for audio.
    pub cts: Option<i32>,
    pub data: &'a [u8],
}

/// styp + moof + mdat of one fragment.
pub(crate) fn media_segment(
    track_id: u32,
    sequence: u32,
    base_decode_time: u64,
    samples: &[SampleOut<'_>],
) -> Result<Bytes, mp4_atom::Error> {
    fragment(track_id, sequence, base_decode_time, samples, true)
}

/// moof + mdat of one fragment (a CMAF chunk), preceded by styp when `with_styp` (the first
/// chunk of a segment): a low-latency segment is its chunks back to back.
pub(crate) fn fragment(
    track_id: u32,
    sequence: u32,
    base_decode_time: u64,
    samples: &[SampleOut<'_>],
    with_styp: bool,
) -> Result<Bytes, mp4_atom::Error> {
    let styp =
        Styp { major_brand: b"cmfs".into(), minor_version: 0, compatible_brands: vec![b"cmfs".into(), b"msdh".into()] };
    let entries: Vec<TrunEntry> = samples
        .iter()
        .map(|s| TrunEntry {
            duration: Some(s.duration),
            size: Some(s.data.len() as u32),
            flags: Some(s.flags),
            cts: s.cts.map(i64::from),
        })
        .collect();
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number: sequence },
        traf: vec![Traf {
            tfhd: Tfhd { track_id, default_base_is_moof: true, ..Default::default() },
            tfdt: Some(Tfdt { base_media_decode_time: base_decode_time }),
            trun: vec![Trun { data_offset: Some(0), samples: entries.into() }],
            ..Default::default()
        }],
    };
    // The data offset counts from the start of moof to the first sample byte, so moof is
    // encoded once to learn its size (which the offset's value does not change).
    let mut probe = Vec::with_capacity(256 + samples.len() * 16);
    moof.encode(&mut probe)?;
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    moof.traf[0].trun[0].data_offset = Some((probe.len() + 8) as i32);

    let mut out = Vec::with_capacity(64 + probe.len() + 8 + payload);
    if with_styp {
        styp.encode(&mut out)?;
    }
    moof.encode(&mut out)?;
    // mdat is written by hand: mp4-atom's `Mdat` owns one Vec of the payload, which would
    // cost a second copy of every sample; the header is only size + 'mdat'.
    let mdat_size = u32::try_from(8 + payload).map_err(|_| mp4_atom::Error::TooLarge(b"mdat".into()))?;
    out.extend_from_slice(&mdat_size.to_be_bytes());
    out.extend_from_slice(b"mdat");
    for s in samples {
        out.extend_from_slice(s.data);
    }
    Ok(out.into())
}
