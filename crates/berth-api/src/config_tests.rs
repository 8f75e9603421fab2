//! The create body's mapping onto `RunOptions` (`config.rs`), case by case.

use super::*;

fn opts(json: &str) -> ApiResult<RunOptions> {
    run_options(serde_json::from_str(json).unwrap(), Some("web".into())).map(|(o, _)| o)
}

#[test]
fn the_clis_create_body_becomes_the_clis_own_options() {
    let o = opts(r#"{"Image":"bb","Entrypoint":["sh","-c"],"Cmd":["echo hi"],"Env":["A=1","LEAK"],"Tty":true,"OpenStdin":true,
        "ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}},
        "HostConfig":{"Binds":["/tmp:/x:ro"],"Memory":67108864,"NanoCpus":500000000,"PidsLimit":20,
          "PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}],"53/udp":[{"HostIp":"127.0.0.1","HostPort":""}]},
          "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"NetworkMode":"default","Dns":["1.1.1.1"],
          "Tmpfs":{"/run":"size=1m"},"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],
          "Mounts":[{"Type":"volume","Source":"v1","Target":"/v","ReadOnly":true}]}}"#).unwrap();
    assert_eq!(o.entrypoint.as_deref(), Some("sh"));
    assert_eq!(o.cmd, ["-c", "echo hi"]);
    assert_eq!(
        o.env,
        ["A=1", "LEAK"],
        "an entry without a value is kept bare, never read from the service's env"
    );
    assert_eq!(o.name.as_deref(), Some("web"));
    assert_eq!(
        (o.memory, o.cpus, o.pids_limit),
        (Some(64 << 20), Some(0.5), Some(20))
    );
    assert_eq!(o.publish, ["127.0.0.1::53/udp", "8080:80/tcp"]);
    assert_eq!(o.restart, "on-failure:3");
    assert_eq!(o.volumes, ["/tmp:/x:ro", "/data"]);
    assert_eq!(o.tmpfs, ["/run:size=1m"]);
    assert_eq!(o.ulimits, ["nofile=10:20"]);
    assert_eq!(o.mounts, ["type=volume,source=v1,target=/v,readonly"]);
    assert_eq!(o.expose, ["80/tcp"]);
}

#[test]
fn what_berth_cannot_do_is_refused_by_name() {
    for (json, word) in [
        (
            r#"{"Image":"bb","HostConfig":{"UsernsMode":"private"}}"#,
            "UsernsMode",
        ),
        (
            r#"{"Image":"bb","HostConfig":{"Links":["db:db"]}}"#,
            "Links",
        ),
        (
            r#"{"Image":"bb","Healthcheck":{"Test":["BOGUS"]}}"#,
            "Healthcheck.Test",
        ),
        (
            r#"{"Image":"bb","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#,
            "--rm",
        ),
        (r#"{"Cmd":["true"]}"#, "Image"),
    ] {
        let e = opts(json).unwrap_err();
        assert!(e.to_string().contains(word), "{json}: {e}");
        assert_eq!(e.status(), hyper::StatusCode::BAD_REQUEST);
    }
    // A log driver goes on to the engine, whose check is the CLI's (a 400 there, api_hostile).
    let o = opts(r#"{"Image":"bb","HostConfig":{"LogConfig":{"Type":"syslog"}}}"#).unwrap();
    assert_eq!(o.log_driver, "syslog");
    for mode in ["host", "auto"] {
        let json = format!(r#"{{"Image":"bb","HostConfig":{{"UsernsMode":"{mode}"}}}}"#);
        assert_eq!(opts(&json).unwrap().userns, mode);
    }
    assert_eq!(
        opts(r#"{"Image":"bb","Entrypoint":[""]}"#)
            .unwrap()
            .entrypoint
            .as_deref(),
        Some("")
    );
}

#[test]
fn run_flags_the_cli_sends_reach_the_engines_options() {
    let o = opts(
        r#"{"Image":"bb","Healthcheck":{"Test":["CMD","wget","-q","http://x/it's"],"Interval":2000000000,"Timeout":0,"Retries":3},
        "HostConfig":{"PidMode":"host","UTSMode":"host","IpcMode":"shareable","VolumesFrom":["db:ro"],
        "GroupAdd":["audio"],"Sysctls":{"net.ipv4.ip_forward":"1"},"OomKillDisable":true,
        "MemoryReservation":1048576,"CpuPeriod":50000,"CpuQuota":25000,"DeviceCgroupRules":["c 1:3 rwm"],
        "LogConfig":{"Type":"local","Config":{"max-size":"1m"}}}}"#,
    )
    .unwrap();
    assert_eq!(
        (o.pid.as_str(), o.uts.as_str(), o.ipc.as_str()),
        ("host", "host", "shareable")
    );
    assert_eq!(o.volumes_from, ["db:ro"]);
    assert_eq!(o.group_add, ["audio"]);
    assert_eq!(o.sysctls, ["net.ipv4.ip_forward=1"]);
    assert!(o.oom_kill_disable);
    assert_eq!(o.memory_reservation, Some(1 << 20));
    assert_eq!(
        (o.cpu_period, o.cpu_quota, o.cpus),
        (Some(50000), Some(25000), None)
    );
    assert_eq!(o.device_cgroup_rules, ["c 1:3 rwm"]);
    assert_eq!(
        (o.log_driver.as_str(), o.log_opts.as_slice()),
        ("local", &["max-size=1m".to_string()][..])
    );
    assert_eq!(
        o.health.cmd.as_deref(),
        Some(r#"'wget' '-q' 'http://x/it'\''s'"#)
    );
    assert_eq!(o.health.interval.as_deref(), Some("2000000000ns"));
    assert_eq!(
        (o.health.timeout.as_deref(), o.health.retries),
        (None, Some(3))
    );
    let none = opts(r#"{"Image":"bb","Healthcheck":{"Test":["NONE"]}}"#).unwrap();
    assert!(none.health.disable);
}

#[test]
fn cgroup_blkio_swappiness_and_annotations_reach_the_engines_options() {
    let o = opts(
        r#"{"Image":"bb","HostConfig":{"CgroupParent":"/tenants/a","CgroupnsMode":"host",
        "CpuRealtimePeriod":100000,"CpuRealtimeRuntime":5000,"MemorySwappiness":0,
        "BlkioWeightDevice":[{"Path":"/dev/loop0","Weight":300}],
        "BlkioDeviceReadBps":[{"Path":"/dev/loop0","Rate":1048576}],
        "BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":null,
        "BlkioDeviceWriteIOps":[{"Path":"/dev/loop0","Rate":40}],
        "Annotations":{"org.example.k":"v"}}}"#,
    )
    .unwrap();
    assert_eq!(
        (o.cgroup_parent.as_str(), o.cgroupns.as_str()),
        ("/tenants/a", "host")
    );
    assert_eq!(
        (o.cpu_rt_period, o.cpu_rt_runtime, o.memory_swappiness),
        (Some(100_000), Some(5000), Some(0))
    );
    assert_eq!(o.blkio_weight_device, ["/dev/loop0:300"]);
    assert_eq!(o.device_read_bps, ["/dev/loop0:1048576"]);
    assert!(o.device_write_bps.is_empty() && o.device_read_iops.is_empty());
    assert_eq!(o.device_write_iops, ["/dev/loop0:40"]);
    assert_eq!(
        o.annotations.get("org.example.k").map(String::as_str),
        Some("v")
    );
    let unset = opts(r#"{"Image":"bb","HostConfig":{"MemorySwappiness":-1}}"#).unwrap();
    assert_eq!(unset.memory_swappiness, None);
}

#[test]
fn mac_ipv6_and_link_local_addresses_come_from_the_first_endpoint() {
    let o = opts(
        r#"{"Image":"bb","HostConfig":{"NetworkMode":"front"},
        "NetworkingConfig":{"EndpointsConfig":{"front":{"MacAddress":"92:d0:c6:0a:29:33",
          "IPAMConfig":{"IPv6Address":"fd00::42","LinkLocalIPs":["169.254.1.2"]}}}}}"#,
    )
    .unwrap();
    assert_eq!(o.mac_address.as_deref(), Some("92:d0:c6:0a:29:33"));
    assert_eq!(o.ip6, Some("fd00::42".parse().unwrap()));
    assert_eq!(
        o.link_local_ips,
        ["169.254.1.2".parse::<std::net::IpAddr>().unwrap()]
    );
    let old = opts(r#"{"Image":"bb","MacAddress":"92:d0:c6:0a:29:34"}"#).unwrap();
    assert_eq!(old.mac_address.as_deref(), Some("92:d0:c6:0a:29:34"));
    let e = opts(
        r#"{"Image":"bb","HostConfig":{"NetworkMode":"front"},
        "NetworkingConfig":{"EndpointsConfig":{"front":{},"back":{"MacAddress":"92:d0:c6:0a:29:35"}}}}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("EndpointsConfig.back"), "{e}");
}
