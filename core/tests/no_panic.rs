//! Whatever a member types or a server sends, the barcode and card code answers with a value or a
//! typed error, never a panic (a panic across the FFI is an exception at best).

use proptest::prelude::*;
use tessera_core::barcode::{BarcodeMatrix, Symbology, analyse_card_number, encoded_value};
use tessera_core::{MemberCard, Program};

fn any_symbology() -> impl Strategy<Value = Symbology> {
    prop::sample::select(Symbology::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn encoding_any_string_never_panics(s in any_symbology(), input in "\\PC{0,600}") {
        if let Ok(value) = encoded_value(s, &input) {
            let m = BarcodeMatrix::encode(s, &value).unwrap();
            prop_assert_eq!(m.modules.len(), (m.width * m.height) as usize);
            prop_assert!(m.svg(1).is_ok());
        }
    }

    #[test]
    fn digits_always_encode_in_gtin_codes(digits in "[0-9]{12}") {
        let m = BarcodeMatrix::encode(Symbology::Ean13, &digits).unwrap();
        prop_assert_eq!(m.width, 95);
        prop_assert_eq!(m.encoded_value.len(), 13);
        prop_assert!(m.encoded_value.starts_with(&digits));
    }

    #[test]
    fn analysis_suggestions_all_encode(input in "[ -~]{0,60}") {
        if let Ok(a) = analyse_card_number(&input) {
            prop_assert!(!a.suggestions.is_empty());
            for s in a.suggestions {
                prop_assert!(BarcodeMatrix::encode(s.symbology, &s.encoded_value).is_ok());
            }
        }
    }

    #[test]
    fn any_program_or_card_validates_or_errs(
        id in "\\PC{0,80}", name in "\\PC{0,100}", color in "\\PC{0,10}",
        number in "\\PC{0,60}", holder in "\\PC{0,120}", since in "\\PC{0,12}",
        s in any_symbology(),
    ) {
        let _ = Program { id, name, brand_color: color, symbology: s }.validated();
        let _ = MemberCard { card_number: number, holder_name: holder, member_since: since, tier_label: None }
            .validated(s);
    }
}

/// The push payload parser on anything (the cargo-fuzz target in fuzz/ runs the same check for
/// minutes on nightly; this keeps a quick version in every test run).
mod push_messages {
    use proptest::prelude::*;
    use tessera_core::push::parse;

    const SEEDS: [&str; 3] = [
        include_str!("../../fuzz/corpus/push_payload/sync.json"),
        include_str!("../../fuzz/corpus/push_payload/apns.json"),
        include_str!("../../fuzz/corpus/push_payload/fcm.json"),
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_text_gets_a_payload_or_a_typed_error(s in ".{0,300}") {
            let _ = parse(&s);
        }

        #[test]
        fn mutated_payloads_never_panic(
            seed in 0usize..3,
            cut in 0usize..600,
            insert in ".{0,8}",
            at in 0usize..600,
        ) {
            let mut text = SEEDS[seed].to_owned();
            let cut = cut.min(text.len());
            while !text.is_char_boundary(cut.min(text.len())) { text.pop(); }
            let mut text: String = text.chars().take(cut).collect::<String>() + &SEEDS[seed].chars().skip(cut + 1).collect::<String>();
            let at = at.min(text.len());
            if text.is_char_boundary(at) {
                text.insert_str(at, &insert);
            }
            if let Ok(p) = parse(&text) {
                prop_assert!(p.validate().is_ok());
            }
        }
    }

    #[test]
    fn the_seeds_parse() {
        for s in SEEDS {
            parse(s).unwrap();
        }
    }
}
