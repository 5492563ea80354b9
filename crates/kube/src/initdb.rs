//! `initdb` arguments as CloudNativePG's explicit fields.
//!
//! CloudNativePG also takes raw `initdb` options, but that field is deprecated
//! and makes it ignore every explicit one; so each argument maps to its field,
//! and one without a field is refused with the list of those that have one.

use crate::error::Error;

/// The `initdb` settings, as CloudNativePG's `bootstrap.initdb` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InitdbSettings {
    pub(crate) data_checksums: bool,
    pub(crate) encoding: Option<String>,
    pub(crate) locale: Option<String>,
    pub(crate) locale_collate: Option<String>,
    pub(crate) locale_ctype: Option<String>,
    pub(crate) locale_provider: Option<String>,
    pub(crate) icu_locale: Option<String>,
    pub(crate) wal_segment_size: Option<i64>,
}

const ACCEPTED: &str = "accepted: --data-checksums (-k), --encoding (-E), --locale, --lc-collate, --lc-ctype, --locale-provider, --icu-locale, --wal-segsize";

/// Parses the arguments as the official image's entrypoint splits
/// `POSTGRES_INITDB_ARGS`: at white space.
pub(crate) fn parse(args: &str) -> Result<InitdbSettings, Error> {
    let mut settings = InitdbSettings::default();
    let mut words = args.split_whitespace();
    while let Some(word) = words.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value)),
            _ => (word, None),
        };
        let mut value = |what: &str| -> Result<String, Error> {
            let value = match inline {
                Some(v) => Some(v.to_owned()),
                None => words.next().map(str::to_owned),
            };
            match value {
                Some(v) if !v.is_empty() && !v.starts_with('-') => Ok(v),
                _ => Err(Error::InitdbArgument {
                    arg: word.to_owned(),
                    reason: format!("needs {what} after it"),
                }),
            }
        };
        match flag {
            "--data-checksums" | "-k" if inline.is_none() => settings.data_checksums = true,
            "--encoding" | "-E" => settings.encoding = Some(value("an encoding such as UTF8")?),
            "--locale" => settings.locale = Some(value("a locale such as C.UTF-8")?),
            "--lc-collate" => settings.locale_collate = Some(value("a locale")?),
            "--lc-ctype" => settings.locale_ctype = Some(value("a locale")?),
            "--locale-provider" => {
                settings.locale_provider = Some(value("libc, icu or builtin")?);
            }
            "--icu-locale" => settings.icu_locale = Some(value("an ICU locale")?),
            "--wal-segsize" => {
                let text = value("a size in megabytes")?;
                let size = text
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 1024 && n.is_power_of_two());
                match size {
                    Some(n) => settings.wal_segment_size = Some(i64::from(n)),
                    None => {
                        return Err(Error::InitdbArgument {
                            arg: word.to_owned(),
                            reason:
                                "the WAL segment size is a power of two from 1 to 1024 (megabytes)"
                                    .into(),
                        });
                    }
                }
            }
            _ => {
                return Err(Error::InitdbArgument {
                    arg: word.to_owned(),
                    reason: format!(
                        "CloudNativePG has no setting for it (it sets up users and authentication itself); {ACCEPTED}"
                    ),
                });
            }
        }
    }
    // CloudNativePG's own rule, checked by the API server: an ICU locale needs
    // the ICU provider.
    if settings.icu_locale.is_some() && settings.locale_provider.as_deref() != Some("icu") {
        return Err(Error::InitdbArgument {
            arg: "--icu-locale".into(),
            reason: "needs --locale-provider=icu as well".into(),
        });
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_checksums() {
        let s = parse("--data-checksums").unwrap();
        assert_eq!(
            s,
            InitdbSettings {
                data_checksums: true,
                ..InitdbSettings::default()
            }
        );
        assert_eq!(parse("").unwrap(), InitdbSettings::default());
        assert!(parse("  -k ").unwrap().data_checksums);
    }

    #[test]
    fn values_inline_or_separate() {
        let s = parse("-E UTF8 --locale=C.UTF-8 --lc-collate C --wal-segsize=64").unwrap();
        assert_eq!(s.encoding.as_deref(), Some("UTF8"));
        assert_eq!(s.locale.as_deref(), Some("C.UTF-8"));
        assert_eq!(s.locale_collate.as_deref(), Some("C"));
        assert_eq!(s.wal_segment_size, Some(64));
        let s = parse("--locale-provider=icu --icu-locale=en-US").unwrap();
        assert_eq!(s.icu_locale.as_deref(), Some("en-US"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_parsed_or_refused_without_panicking(args in "\\PC{0,40}") {
            let _ = parse(&args);
        }

        #[test]
        fn every_accepted_flag_gives_back_its_value(
            encoding in "[A-Z][A-Z0-9]{1,8}",
            locale in "[a-z]{2}_[A-Z]{2}\\.UTF-8",
            segsize in 0u32..=10,
            checksums: bool,
        ) {
            let wal = 1u32 << segsize;
            let args = format!(
                "{} --encoding={encoding} --locale {locale} --wal-segsize={wal}",
                if checksums { "-k" } else { "" },
            );
            let s = parse(&args).unwrap();
            proptest::prop_assert_eq!(s.data_checksums, checksums);
            proptest::prop_assert_eq!(s.encoding, Some(encoding));
            proptest::prop_assert_eq!(s.locale, Some(locale));
            proptest::prop_assert_eq!(s.wal_segment_size, Some(i64::from(wal)));
        }
    }

    #[test]
    fn refused_with_reasons() {
        for (args, needle) in [
            ("--auth=trust", "no setting"),
            ("--username postgres", "no setting"),
            ("--encoding", "needs an encoding"),
            ("--encoding --data-checksums", "needs an encoding"),
            ("--wal-segsize=3", "power of two"),
            ("--wal-segsize=2048", "power of two"),
            ("--icu-locale=en", "--locale-provider=icu"),
            ("--data-checksums=yes", "no setting"),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(needle), "{args}: {e}");
            assert!(e.contains("postgres.initdb_args"), "{e}");
        }
    }
}
