//! The OData subset AMS supports on asset lists: `$filter` with `eq ne gt ge lt le` on `name`,
//! `properties/created`, `properties/alternateId` and `properties/assetId`, joined by `and`;
//! `$orderby` on `name` or `properties/created`, `asc` or `desc`.
//!
//! Written by hand: the OData crates implement the full grammar (functions, lambdas, nested
//! paths) and would still need this mapping onto the few columns that can be filtered.

use edge_db::{AssetCondition, AssetOrder, CmpOp};
use edge_model::Timestamp;

use crate::error::{ApiError, ApiResult};

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::invalid_parameter(msg)
}

fn tokens(s: &str) -> ApiResult<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut lit = String::from("'");
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        lit.push('\'');
                    }
                    Some('\'') => break,
                    Some(ch) => lit.push(ch),
                    None => return Err(bad("$filter has an unterminated string literal.")),
                }
            }
            out.push(lit);
        } else {
            let mut w = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                w.push(ch);
                chars.next();
            }
            out.push(w);
        }
    }
    Ok(out)
}

fn op(s: &str) -> Option<CmpOp> {
    Some(match s.to_ascii_lowercase().as_str() {
        "eq" => CmpOp::Eq,
        "ne" => CmpOp::Ne,
        "gt" => CmpOp::Gt,
        "ge" => CmpOp::Ge,
        "lt" => CmpOp::Lt,
        "le" => CmpOp::Le,
        _ => return None,
    })
}

pub fn asset_filter(s: &str) -> ApiResult<Vec<AssetCondition>> {
    let t = tokens(s)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < t.len() {
        if i > 0 {
            if !t[i].eq_ignore_ascii_case("and") {
                return Err(bad(format!("$filter: expected 'and' but found '{}'; only 'and' joins conditions.", t[i])));
            }
            i += 1;
        }
        let (Some(field), Some(o), Some(value)) = (t.get(i), t.get(i + 1), t.get(i + 2)) else {
            return Err(bad("$filter must look like: name eq 'x' and properties/created gt 2024-01-01T00:00:00Z"));
        };
        let o = op(o).ok_or_else(|| bad(format!("$filter: unknown operator '{o}' (use eq, ne, gt, ge, lt, le).")))?;
        let string = |v: &str| -> ApiResult<String> {
            v.strip_prefix('\'')
                .map(str::to_owned)
                .ok_or_else(|| bad(format!("$filter: '{field}' needs a quoted string such as 'name'.")))
        };
        let cond = match field.to_ascii_lowercase().as_str() {
            "name" => AssetCondition::Name(o, string(value)?),
            "properties/alternateid" => AssetCondition::AlternateId(o, string(value)?),
            "properties/assetid" => AssetCondition::AssetId(o, string(value)?),
            "properties/created" => {
                let raw = value.trim_start_matches('\'');
                let raw = raw.strip_prefix("datetime").map(|r| r.trim_matches('\'')).unwrap_or(raw);
                // AMS's own examples filter on bare dates (`gt 2012-06-01`): midnight UTC.
                let ts = Timestamp::parse(raw).or_else(|| Timestamp::parse(&format!("{raw}T00:00:00Z"))).ok_or_else(
                    || {
                        bad(format!(
                            "$filter: '{raw}' is not a date or date-time such as 2024-01-01 or 2024-01-01T00:00:00Z."
                        ))
                    },
                )?;
                AssetCondition::Created(o, ts)
            }
            other => {
                return Err(bad(format!(
                    "$filter: assets can be filtered on name, properties/created, properties/alternateId and properties/assetId, not '{other}'."
                )));
            }
        };
        out.push(cond);
        i += 3;
    }
    Ok(out)
}

pub fn asset_order(s: &str) -> ApiResult<AssetOrder> {
    let t: Vec<&str> = s.split_whitespace().collect();
    let desc = match t.get(1).map(|d| d.to_ascii_lowercase()) {
        None => false,
        Some(d) if d == "asc" => false,
        Some(d) if d == "desc" => true,
        Some(d) => return Err(bad(format!("$orderby: expected asc or desc, got '{d}'."))),
    };
    if t.len() > 2 {
        return Err(bad("$orderby takes one field: name or properties/created, then asc or desc."));
    }
    match (t.first().map(|f| f.to_ascii_lowercase()).as_deref(), desc) {
        (Some("name"), false) => Ok(AssetOrder::NameAsc),
        (Some("name"), true) => Ok(AssetOrder::NameDesc),
        (Some("properties/created"), false) => Ok(AssetOrder::CreatedAsc),
        (Some("properties/created"), true) => Ok(AssetOrder::CreatedDesc),
        _ => Err(bad(format!("$orderby: assets can be ordered by name or properties/created, not '{s}'."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_from_the_ams_examples() {
        let c = asset_filter("properties/created gt 2012-06-01 and properties/created lt 2013-07-01").unwrap();
        assert_eq!(c[0], AssetCondition::Created(CmpOp::Gt, Timestamp::parse("2012-06-01T00:00:00Z").unwrap()));
        assert!(asset_filter("properties/created gt 2012-13-01").is_err());
        let c =
            asset_filter("properties/created gt 2012-06-01T00:00:00Z and properties/created lt 2013-07-01T00:00:00Z")
                .unwrap();
        assert_eq!(c.len(), 2);
        assert!(matches!(c[0], AssetCondition::Created(CmpOp::Gt, _)));
        let c = asset_filter("name eq 'it''s'").unwrap();
        assert_eq!(c, vec![AssetCondition::Name(CmpOp::Eq, "it's".into())]);
    }

    #[test]
    fn filter_errors() {
        for bad in ["name", "name eq", "name like 'x'", "name eq 'x' or name eq 'y'", "size gt 1", "name eq 'x"] {
            assert!(asset_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn orderby() {
        assert_eq!(asset_order("properties/created desc").unwrap(), AssetOrder::CreatedDesc);
        assert_eq!(asset_order("Name").unwrap(), AssetOrder::NameAsc);
        assert!(asset_order("size").is_err());
        assert!(asset_order("name sideways").is_err());
    }
}
