//! WeChat login and binding (`app::wechat`) against a fake WeChat: the phone
//! number WeChat verified decides, attempts are counted before they are
//! checked, one binding per person, one access token for everybody.

use super::*;
use support::wechat::FakeWeChat;
use support::{block_on, ticket_key};

const OPENID: &str = "oTEST-openid-0001";
const OTHER_OPENID: &str = "oTEST-openid-0002";

fn wechat() -> FakeWeChat {
    FakeWeChat::default()
        .login("good", json!({"openid": OPENID, "session_key": "sk"}))
        .login(
            "other",
            json!({"openid": OTHER_OPENID, "session_key": "sk"}),
        )
        .login("used", json!({"errcode": 40029, "errmsg": "invalid code"}))
        .login("busy", json!({"errcode": -1, "errmsg": "system error"}))
        .login(
            "limit",
            json!({"errcode": 45011, "errmsg": "api minute-quota reach limit"}),
        )
}

impl World {
    fn wx(&self, now: DateTime<Utc>, fake: &FakeWeChat, path: &str, body: Value) -> Reply {
        reply(block_on(vouchers::handle_with(
            &self.env(now),
            &request("POST", path, None, Some(body), None),
            fake,
        )))
    }

    fn login(&self, now: DateTime<Utc>, fake: &FakeWeChat, code: &str) -> Reply {
        self.wx(now, fake, "/api/v1/wechat/login", json!({"code": code}))
    }

    fn ticket(&self, now: DateTime<Utc>, fake: &FakeWeChat, code: &str) -> String {
        let r = self.login(now, fake, code);
        assert_eq!(r.body["status"], "unbound", "{}", r.text);
        r.body["bind_ticket"].as_str().unwrap().to_string()
    }

    /// Binds with the ID number of roster line `line` and a phone code.
    fn bind(
        &self,
        now: DateTime<Utc>,
        fake: &FakeWeChat,
        ticket: &str,
        line: usize,
        phone_code: &str,
    ) -> Reply {
        self.wx(
            now,
            fake,
            "/api/v1/wechat/bind",
            json!({"bind_ticket": ticket, "id_number": self.app.roster[line].id_number.expose(),
                   "phone_code": phone_code}),
        )
    }

    fn mobile(&self, line: usize) -> String {
        self.app.roster[line].mobile.expose().to_string()
    }

    fn audit_actions(&self, action: &str) -> usize {
        self.kv
            .dump()
            .iter()
            .filter(|(k, v)| {
                k.starts_with("vt:audit:event:")
                    && String::from_utf8_lossy(v).contains(&format!("\"{action}\""))
            })
            .count()
    }
}

#[test]
fn wechat_login_answers_wechat_errors_with_stable_codes() {
    let w = World::new(1);
    let now = at("2022-06-14");
    let fake = wechat();
    for (code, status, name) in [
        ("used", 422, "wechat_code_invalid"),
        ("busy", 503, "wechat_busy"),
        ("limit", 429, "wechat_rate_limited"),
        ("nobody-home", 502, "wechat_unreachable"),
    ] {
        let r = w.login(now, &fake, code);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(name)),
            "{code}"
        );
    }
}

#[test]
fn binding_with_a_wechat_verified_phone_that_differs_from_the_roster_is_refused() {
    let w = World::new(3);
    let codes = w.issued(3);
    let now = at("2022-06-14");
    let fake = wechat()
        .phone("phone-of-line-1", &w.mobile(1))
        .phone("phone-of-line-0", &w.mobile(0));
    let ticket = w.ticket(now, &fake, "good");
    let before = w.kv.dump();

    // The mobile the institution typed in is no longer a proof: the field is gone.
    let typed = w.wx(
        now,
        &fake,
        "/api/v1/wechat/bind",
        json!({"bind_ticket": ticket, "id_number": w.app.roster[0].id_number.expose(),
               "mobile": w.mobile(0)}),
    );
    assert_eq!(typed.status, 422, "{}", typed.text);
    assert_eq!(w.kv.dump(), before, "a malformed bind changes nothing");

    // WeChat verified line 1's phone; the ID number is line 0's.
    let wrong = w.bind(now, &fake, &ticket, 0, "phone-of-line-1");
    assert_eq!(
        (wrong.status, wrong.body["code"].as_str()),
        (403, Some("binding_proof_failed"))
    );
    assert_eq!(wrong.body["attempts_left"], 4);
    for secret in [
        w.app.roster[0].id_number.expose(),
        &w.mobile(1),
        &w.mobile(0),
    ] {
        assert!(
            !wrong.text.contains(secret),
            "the answer echoes no personal data"
        );
    }
    assert!(
        !w.kv.dump().keys().any(|k| k.starts_with("vt:wx:")),
        "nothing bound"
    );

    let ok = w.bind(now, &fake, &ticket, 0, "phone-of-line-0");
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["person_ref"], w.person(0).as_str());
    assert_eq!(ok.body["replaced_binding"], false);
    assert_eq!(fake.fetches(), 1, "one access token for both phone calls");

    let again = w.login(now, &fake, "good");
    assert_eq!(again.body["status"], "bound");
    let token = again.body["token"].as_str().unwrap();
    let mine = w.send(
        now,
        request("GET", "/api/v1/me/vouchers", Some(token), None, None),
    );
    assert_eq!(
        mine.body["items"][0]["code_compact"],
        codes[0].as_str(),
        "{}",
        mine.text
    );
    let other = w.send(
        now,
        request(
            "GET",
            &format!("/api/v1/people/{}/archive", w.person(1)),
            Some(token),
            None,
            None,
        ),
    );
    assert_eq!(other.status, 403);
    assert!(
        w.kv.dump().iter().all(|(k, v)| !k.contains(OPENID)
            && !String::from_utf8_lossy(v).contains(OPENID)
            && !String::from_utf8_lossy(v).contains("ACCESS-TOKEN")
                | k.starts_with("vt:wx-access-token")),
        "no openid in clear; the access token only under its own key"
    );
}

#[test]
fn a_phone_number_outside_mainland_china_never_proves_a_roster_entry() {
    let w = World::new(1);
    w.issued(1);
    let now = at("2022-06-14");
    let m = w.mobile(0);
    let fake = wechat().phone_answer(
        "hk",
        json!({"errcode": 0, "phone_info": {"phoneNumber": format!("+852 {m}"),
               "purePhoneNumber": m, "countryCode": "852"}}),
    );
    let ticket = w.ticket(now, &fake, "good");
    let r = w.bind(now, &fake, &ticket, 0, "hk");
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (403, Some("binding_proof_failed"))
    );
}

#[test]
fn a_second_binding_of_the_same_person_ends_the_first() {
    let w = World::new(1);
    w.issued(1);
    let now = at("2022-06-14");
    let fake = wechat().phone("p1", &w.mobile(0)).phone("p2", &w.mobile(0));
    let first_ticket = w.ticket(now, &fake, "good");
    let first = w.bind(now, &fake, &first_ticket, 0, "p1");
    assert_eq!(first.status, 200, "{}", first.text);
    let first_token = first.body["token"].as_str().unwrap().to_string();
    let me = |t: &str| {
        w.send(
            now,
            request("GET", "/api/v1/me/vouchers", Some(t), None, None),
        )
    };
    assert_eq!(me(&first_token).status, 200);

    let second_ticket = w.ticket(now, &fake, "other");
    let second = w.bind(now, &fake, &second_ticket, 0, "p2");
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.body["replaced_binding"], true);
    let second_token = second.body["token"].as_str().unwrap().to_string();

    let old = me(&first_token);
    assert_eq!(
        (old.status, old.body["code"].as_str()),
        (401, Some("token_binding_replaced"))
    );
    assert_eq!(me(&second_token).status, 200);
    assert_eq!(
        w.login(now, &fake, "good").body["status"],
        "unbound",
        "the first WeChat user is unbound"
    );
    assert_eq!(w.login(now, &fake, "other").body["status"], "bound");
    assert_eq!(
        w.audit_actions("wechat.bound"),
        2,
        "both bindings are audited"
    );
}

#[test]
fn binding_attempts_are_counted_before_they_are_checked_and_the_sixth_is_locked_out() {
    let w = World::new(2);
    w.issued(2);
    let now = at("2022-06-14");
    let mut fake = wechat().phone("right", &w.mobile(0));
    for n in 0..6 {
        fake = fake.phone(&format!("wrong-{n}"), &w.mobile(1));
    }
    let ticket = store::wechat::sign_ticket(&ticket_key(), &"ab".repeat(32), now.timestamp() + 600);
    let statuses: Vec<(u16, String)> = (0..6)
        .map(|n| {
            let r = w.bind(now, &fake, &ticket, 0, &format!("wrong-{n}"));
            (r.status, r.body["code"].as_str().unwrap_or("").to_string())
        })
        .collect();
    assert_eq!(statuses[0], (403, "binding_proof_failed".to_string()));
    assert_eq!(statuses[4], (403, "binding_proof_failed".to_string()));
    assert_eq!(statuses[5], (429, "binding_locked".to_string()));
    assert_eq!(
        fake.phone_calls(),
        5,
        "a locked-out attempt never reaches WeChat"
    );
    let attempts = store::wechat::attempts(&w.kv, &format!("wx:{}", "ab".repeat(32)), now).unwrap();
    assert_eq!(attempts, 6);
    assert_eq!(
        w.audit_actions("wechat.binding_locked"),
        1,
        "the WeChat user's lockout is audited (the person's counter stopped at five)"
    );
    // Locked: even the right phone is refused until the window ends.
    let r = w.bind(now, &fake, &ticket, 0, "right");
    assert_eq!(r.status, 429);
    assert!(r.headers.get("retry-after").is_some());
    let later = now + chrono::Duration::hours(2);
    let ticket2 =
        store::wechat::sign_ticket(&ticket_key(), &"ab".repeat(32), later.timestamp() + 600);
    let r = w.bind(later, &fake, &ticket2, 0, "right");
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn twenty_parallel_wrong_attempts_leave_the_counter_at_twenty_and_the_lockout_in_force() {
    let w = World::new(2);
    w.issued(2);
    let now = at("2022-06-14");
    let mut fake = wechat();
    for n in 0..20 {
        fake = fake.phone(&format!("wrong-{n}"), &w.mobile(1));
    }
    let ticket = store::wechat::sign_ticket(&ticket_key(), &"cd".repeat(32), now.timestamp() + 600);
    let replies: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|n| {
                let (w, fake, ticket) = (&w, &fake, &ticket);
                s.spawn(move || w.bind(now, fake, ticket, 0, &format!("wrong-{n}")))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let refused = replies.iter().filter(|r| r.status == 403).count();
    let locked = replies.iter().filter(|r| r.status == 429).count();
    assert_eq!(
        (refused, locked),
        (5, 15),
        "exactly five attempts are checked"
    );
    let attempts = store::wechat::attempts(&w.kv, &format!("wx:{}", "cd".repeat(32)), now).unwrap();
    assert_eq!(attempts, 20);
    assert_eq!(
        fake.fetches(),
        1,
        "the access token was fetched once for all of them"
    );
}

#[test]
fn the_access_token_is_reused_until_shortly_before_it_expires_and_refreshed_when_wechat_refuses_it()
{
    let w = World::new(3);
    w.issued(3);
    let now = at("2022-06-14");
    let fake = wechat()
        .phone("a", &w.mobile(0))
        .phone("b", &w.mobile(1))
        .phone("c", &w.mobile(2));
    let bind = |now: DateTime<Utc>, line: usize, code: &str| {
        let ticket = store::wechat::sign_ticket(
            &ticket_key(),
            &format!("{line:0>64}"),
            now.timestamp() + 600,
        );
        w.bind(now, &fake, &ticket, line, code)
    };
    assert_eq!(bind(now, 0, "a").status, 200);
    assert_eq!(fake.fetches(), 1);
    // WeChat invalidated the token (another server force-refreshed it): 40001,
    // one refresh, the call retried once.
    fake.invalidate_token();
    assert_eq!(bind(now, 1, "b").status, 200);
    assert_eq!((fake.fetches(), fake.phone_calls()), (2, 3));
    // 7,200 s tokens are refreshed 300 s before they expire.
    let r = bind(now + chrono::Duration::seconds(7200 - 299), 2, "c");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(fake.fetches(), 3);
}

#[test]
fn wechat_errors_of_the_phone_step_are_stable_codes_and_bind_nothing() {
    let w = World::new(1);
    w.issued(1);
    let now = at("2022-06-14");
    let fake = wechat()
        .phone_answer("limit", json!({"errcode": 45011, "errmsg": "minute-quota"}))
        .phone_answer("busy", json!({"errcode": -1, "errmsg": "system error"}));
    let ticket = w.ticket(now, &fake, "good");
    for (code, status, name) in [
        ("never-issued", 422, "wechat_code_invalid"),
        ("limit", 429, "wechat_rate_limited"),
        ("busy", 503, "wechat_busy"),
    ] {
        let r = w.bind(now, &fake, &ticket, 0, code);
        assert_eq!(
            (r.status, r.body["code"].as_str()),
            (status, Some(name)),
            "{code}: {}",
            r.text
        );
    }
    fake.invalidate_token();
    fake.token_error(40013);
    let r = w.bind(now, &fake, &ticket, 0, "anything");
    assert_eq!(
        (r.status, r.body["code"].as_str()),
        (502, Some("wechat_error")),
        "{}",
        r.text
    );
    assert!(
        !w.kv
            .dump()
            .keys()
            .any(|k| k.starts_with("vt:wx:") || k.starts_with("vt:wx-person:"))
    );
}

#[test]
fn attempts_by_many_wechat_users_on_one_person_lock_the_person_out() {
    let w = World::new(2);
    w.issued(2);
    let now = at("2022-06-14");
    let fake = wechat();
    for n in 0..7 {
        fake.add_phone(&format!("wrong-{n}"), &w.mobile(1));
    }
    let statuses: Vec<u16> = (0..7)
        .map(|n| {
            // A different WeChat user each time, all naming line 0's ID number.
            let ticket = store::wechat::sign_ticket(
                &ticket_key(),
                &format!("{n:0>64}"),
                now.timestamp() + 600,
            );
            w.bind(now, &fake, &ticket, 0, &format!("wrong-{n}")).status
        })
        .collect();
    assert_eq!(statuses, [403, 403, 403, 403, 403, 429, 429]);
    assert_eq!(fake.phone_calls(), 5);
    assert_eq!(
        store::wechat::attempts(&w.kv, &format!("person:{}", w.person(0)), now).unwrap(),
        7,
        "each user's limit let its one attempt through to the person's counter"
    );
    assert_eq!(
        w.audit_actions("wechat.binding_locked"),
        1,
        "the person's lockout is audited"
    );
}
