//! Helpers shared by the scenario tests: `@name` placeholders and events written as JSON.

use projections::{decode, DomainEvent};
use serde_json::Value;

pub fn uuid_of(name: &str) -> uuid::Uuid {
    uuid::Uuid::from_u128(fnv_pair(name))
}

/// A stable 128-bit value from a name (FNV-1a, twice with different seeds).
fn fnv_pair(name: &str) -> u128 {
    let mut a: u64 = 0xcbf2_9ce4_8422_2325;
    let mut b: u64 = 0x8422_2325_cbf2_9ce4;
    for byte in name.bytes() {
        a = (a ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        b = (b ^ u64::from(byte))
            .wrapping_mul(0x100_0000_01b3)
            .rotate_left(7);
    }
    (u128::from(a) << 64) | u128::from(b)
}

pub fn names(v: Value) -> Value {
    match v {
        Value::String(s) => match s.strip_prefix('@') {
            Some(n) => Value::String(uuid_of(n).to_string()),
            None => Value::String(s),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(names).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| {
                    let k = match k.strip_prefix('@') {
                        Some(n) => uuid_of(n).to_string(),
                        None => k,
                    };
                    (k, names(v))
                })
                .collect(),
        ),
        other => other,
    }
}

pub fn event_of(mut v: Value) -> (DomainEvent, Option<uuid::Uuid>, bool) {
    let obj = v.as_object_mut().expect("an event is an object");
    let id = obj.remove("id").map(|i| {
        i.as_str()
            .expect("id is a string")
            .parse()
            .expect("id is a uuid")
    });
    let force = obj.remove("force").is_some_and(|f| f == Value::Bool(true));
    let ty = obj
        .remove("type")
        .expect("type")
        .as_str()
        .unwrap()
        .to_owned();
    let data = serde_json::to_vec(&v).unwrap();
    let e = decode(&ty, &data, b"").unwrap_or_else(|e| panic!("{ty}: {e}"));
    (e, id, force)
}
