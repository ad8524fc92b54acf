//! `Auto`'s tables: what each prior kind, task and speed chooses.

use super::*;

fn mean(speed: Speed) -> AutoParams {
    AutoParams {
        speed,
        goal: Goal::Mean,
    }
}

#[test]
fn bare_auto_reads_as_a_call() {
    assert_eq!(bare_auto_to_call("Auto"), "Auto()");
    assert_eq!(
        bare_auto_to_call("(sampler: Auto,\n chains: 4)"),
        "(sampler: Auto(),\n chains: 4)"
    );
    assert_eq!(
        bare_auto_to_call("sampler: Auto(speed: Fast)"),
        "sampler: Auto(speed: Fast)"
    );
    assert_eq!(
        bare_auto_to_call("prior: Model(\"Auto\")"),
        "prior: Model(\"Auto\")"
    );
    assert_eq!(
        bare_auto_to_call("sampler: Automatic"),
        "sampler: Automatic"
    );
    assert_eq!(
        super::super::parse("Auto").unwrap(),
        SamplerSpec::Auto(AutoParams::default())
    );
    assert_eq!(
        super::super::parse("Auto(speed: Best)").unwrap(),
        SamplerSpec::Auto(AutoParams {
            speed: Speed::Best,
            ..Default::default()
        })
    );
    assert!(super::super::parse("Auto(speed: Slow)").is_err());
}

#[test]
fn the_choice_is_read_back_from_the_detail() {
    let d = "Auto(speed: Fast) chose Ddrm(steps: 20) for deblurring with a network";
    assert_eq!(chosen_in(d), Some("Ddrm(steps: 20)"));
    assert_eq!(chosen_in("mode: zero-shot"), None);
}

#[test]
fn the_diverse_goal_reads_its_own_table_and_writes_its_line() {
    let diverse = |speed| AutoParams {
        speed,
        goal: Goal::Diverse,
    };
    for row in DIVERSE {
        for line in row.lines {
            let spec = super::super::parse(line).unwrap();
            assert!(!matches!(spec, SamplerSpec::Auto(_)));
        }
    }
    // Photos with holes: a higher start and more noise than the mean's line; a mixture
    // stays exact.
    let photo = choose_for(
        &diverse(Speed::Balanced),
        PriorKind::PatchWithEps,
        Task::Inpaint,
    );
    assert!(photo.contains("eta: 0.5, warm: 1.5"), "{photo}");
    assert_ne!(
        photo,
        choose_for(
            &mean(Speed::Balanced),
            PriorKind::PatchWithEps,
            Task::Inpaint
        )
    );
    assert_eq!(
        choose_for(&diverse(Speed::Fast), PriorKind::Mixture, Task::Deblur),
        "Exact"
    );
    for kind in [
        PriorKind::Mixture,
        PriorKind::NetworkWithEps,
        PriorKind::PatchWithEps,
        PriorKind::Patch,
        PriorKind::Network,
    ] {
        for task in [Task::Denoise, Task::Inpaint, Task::Other] {
            assert!(DIVERSE.iter().any(|r| r.lines.contains(&choose_for(
                &diverse(Speed::Best),
                kind,
                task
            ))));
        }
    }
    assert_eq!(line(&diverse(Speed::Balanced)), "Auto(goal: Diverse)");
    assert_eq!(
        line(&diverse(Speed::Fast)),
        "Auto(speed: Fast, goal: Diverse)"
    );
    assert_eq!(line(&mean(Speed::Balanced)), "Auto");
    for p in [diverse(Speed::Fast), mean(Speed::Best)] {
        assert_eq!(
            super::super::parse(&line(&p)).unwrap(),
            SamplerSpec::Auto(p)
        );
    }
}

#[test]
fn every_table_line_parses_and_every_kind_has_a_catch_all() {
    for row in TABLE {
        for line in row.lines {
            let spec = super::super::parse(line).unwrap();
            assert!(!matches!(spec, SamplerSpec::Auto(_)));
        }
    }
    // The patch kinds read the Network rows where they have none (next test).
    for prior in [
        PriorKind::Mixture,
        PriorKind::NetworkWithEps,
        PriorKind::Network,
    ] {
        assert!(
            TABLE.iter().any(|r| r.prior == prior && r.task.is_none()),
            "{prior:?}"
        );
    }
    assert_eq!(
        choose_for(&mean(Speed::Fast), PriorKind::Mixture, Task::Deblur),
        "Exact"
    );
}

/// A patch prior's fine-tune is used only where its own rows say (super-resolution);
/// elsewhere the patch rows hold, as if it had none, and where those have none the
/// network's. A whole-image prior's fine-tune has its own row.
#[test]
fn patch_priors_fall_back_to_the_patch_then_the_network_rows() {
    assert!(!TABLE.iter().any(
        |r| matches!(r.prior, PriorKind::PatchWithEps | PriorKind::Patch) && r.task.is_none()
    ));
    for task in [
        Task::Denoise,
        Task::Inpaint,
        Task::SuperResolution,
        Task::Deblur,
        Task::Colourise,
        Task::Other,
    ] {
        for speed in [Speed::Fast, Speed::Balanced, Speed::Best] {
            let patch = choose_for(&mean(speed), PriorKind::Patch, task);
            let tuned = choose_for(&mean(speed), PriorKind::PatchWithEps, task);
            if task == Task::SuperResolution {
                assert_eq!(tuned, "Eps(steps: 5)", "{speed:?}");
            } else {
                assert_eq!(tuned, patch, "{task:?} {speed:?}");
            }
            if task != Task::Inpaint {
                assert_eq!(patch, choose_for(&mean(speed), PriorKind::Network, task));
            }
        }
    }
    assert_eq!(
        choose_for(&mean(Speed::Balanced), PriorKind::Patch, Task::Inpaint),
        "Ddrm(steps: 12, warm: 0.8, sigma_min: 0.02)"
    );
    assert_eq!(
        choose_for(&mean(Speed::Balanced), PriorKind::Network, Task::Inpaint),
        "Ddrm(steps: 50)"
    );
    assert_eq!(
        choose_for(
            &mean(Speed::Balanced),
            PriorKind::NetworkWithEps,
            Task::Inpaint
        ),
        "Eps(steps: 20)"
    );
}

/// Beyond linear-Gaussian every line names a sampler that takes the measurement (`Exact`
/// only for a mixture in the plane, DDRM only for photon noise through a diagonal A), for
/// every prior kind, task and speed.
#[test]
fn the_general_table_names_only_samplers_that_take_any_measurement() {
    use crate::samplers::MeasurementSupport;
    let kinds = [
        PriorKind::Mixture,
        PriorKind::Generator,
        PriorKind::NetworkWithEps,
        PriorKind::PatchWithEps,
        PriorKind::Patch,
        PriorKind::Network,
    ];
    let tasks = [
        Task::Denoise,
        Task::Inpaint,
        Task::SuperResolution,
        Task::Deblur,
        Task::Colourise,
        Task::Dejpeg,
        Task::Declip,
        Task::PhaseRetrieval,
        Task::Other,
    ];
    for kind in kinds {
        for task in tasks {
            for speed in [Speed::Fast, Speed::Balanced, Speed::Best] {
                for plane in [false, true] {
                    let line = choose_general(&mean(speed), kind, task, plane);
                    let info = super::super::parse(line).unwrap().info();
                    let exact_ok = kind == PriorKind::Mixture && plane;
                    // Denoising and inpainting beyond linear-Gaussian are photon noise
                    // through a diagonal A: whitened for the Gaussian-step samplers.
                    let whitenable = matches!(task, Task::Denoise | Task::Inpaint);
                    assert!(
                        info.measurements == MeasurementSupport::Any
                            || (whitenable && info.measurements.needs_gaussian_steps())
                            || (exact_ok && info.name == "Exact"),
                        "{kind:?} {task:?} {speed:?} plane {plane}: {line}"
                    );
                }
            }
        }
    }
}
