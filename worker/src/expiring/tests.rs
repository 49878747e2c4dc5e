use super::*;

#[test]
fn a_value_is_fresh_until_its_time_is_up_and_last_keeps_it_after() {
    let cache = Expiring::new(Duration::from_secs(5));
    let stored = Instant::now();
    cache.put_at("a", 1, stored);
    assert_eq!(cache.fresh_at(&"a", stored), Some(1));
    assert_eq!(
        cache.fresh_at(&"a", stored + Duration::from_millis(4_999)),
        Some(1)
    );
    assert_eq!(cache.fresh_at(&"a", stored + Duration::from_secs(5)), None);
    assert_eq!(cache.last(&"a"), Some(1));
    assert_eq!(cache.fresh(&"b"), None);
    assert_eq!(cache.last(&"b"), None);
}

#[test]
fn a_value_made_stale_is_read_again_and_kept_as_the_last_known() {
    let cache = Expiring::new(Duration::from_secs(5));
    cache.put("a", 1);
    assert_eq!(cache.fresh(&"a"), Some(1));
    cache.stale(&"a");
    assert_eq!(cache.fresh(&"a"), None);
    assert_eq!(cache.last(&"a"), Some(1));
    cache.stale(&"b");
    assert_eq!(
        cache.last(&"b"),
        None,
        "nothing stored for a key never read"
    );
}

#[test]
fn a_value_kept_forever_never_goes_stale() {
    let cache = Expiring::forever();
    let stored = Instant::now();
    cache.put_at(7, "x", stored);
    assert_eq!(
        cache.fresh_at(&7, stored + Duration::from_secs(365 * 24 * 3600)),
        Some("x")
    );
}

#[tokio::test]
async fn get_or_read_reads_once_while_fresh_and_stores_no_failure() {
    let cache: Expiring<&str, u32> = Expiring::new(Duration::from_secs(60));
    let failed: Result<u32, &str> = cache.get_or_read(&"k", async { Err("down") }).await;
    assert_eq!(failed, Err("down"));
    assert_eq!(cache.last(&"k"), None, "a failed read stores nothing");
    let read: Result<u32, &str> = cache.get_or_read(&"k", async { Ok(1) }).await;
    assert_eq!(read, Ok(1));
    let again: Result<u32, &str> = cache
        .get_or_read(&"k", async { panic!("read while fresh") })
        .await;
    assert_eq!(again, Ok(1));
}

#[tokio::test]
async fn a_failed_read_falls_back_to_the_last_value_or_the_default() {
    let cache: Expiring<&str, u32> = Expiring::new(Duration::ZERO);
    let mut errors = Vec::new();
    let none = cache
        .get_or_read_or_last(&"k", async { Err("down") }, |e| errors.push(e))
        .await;
    assert_eq!(none, 0, "nothing known yet: the default");
    let read = cache
        .get_or_read_or_last(&"k", async { Ok::<_, &str>(3) }, |_| {})
        .await;
    assert_eq!(read, 3);
    let kept = cache
        .get_or_read_or_last(&"k", async { Err("down again") }, |e| errors.push(e))
        .await;
    assert_eq!(kept, 3, "the last value known stands in");
    assert_eq!(errors, ["down", "down again"]);
}

#[tokio::test]
async fn a_fallback_is_stored_as_fresh_so_a_failing_source_is_not_asked_at_once() {
    let cache: Expiring<&str, u32> = Expiring::new(Duration::from_secs(60));
    cache
        .get_or_read_or_last(&"k", async { Err::<u32, _>("down") }, |_| {})
        .await;
    let next = cache
        .get_or_read_or_last(&"k", async { panic!("asked again at once") }, |_: ()| {})
        .await;
    assert_eq!(next, 0);
}
