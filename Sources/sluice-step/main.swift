import Sluice

// The step processes of the `sluice` tool: what the process and Slurm orchestrators start once per step run of a YAML
// pipeline or the demo (`sluice-step step run …`, `sluice-step runs finish …`). The same command line as `sluice`
// without the serving commands, so it loads without the model server, gRPC, NIO HTTP/2 and the dashboard; `sluice`
// starts it when it is installed beside it (Scripts/install.sh puts both on the prefix).
await Sluice.main(pipelines: [])
