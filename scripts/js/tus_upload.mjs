// tus-js-client (Node) driven by ingest/tests/tus_interop.rs: one upload per run, with the
// options the test passes as JSON in argv[2]:
//   endpoint, file, uploadUrl (resume a known upload), chunkSize, parallelUploads,
//   uploadDataDuringCreation, authorization, metadata, delayMs (wait before every PATCH, so a
//   test can act in the middle), abortAfter (stop once this many bytes are acknowledged; with
//   terminate: true, also DELETE the upload), retryDelays.
// Prints one JSON object per line: {"event":"url"|"progress"|"success"|"aborted"|"error", ...}.
import fs from 'node:fs'
import * as tus from 'tus-js-client'

const o = JSON.parse(process.argv[2])
const out = (event, extra = {}) => process.stdout.write(`${JSON.stringify({ event, ...extra })}\n`)
const file = fs.readFileSync(o.file)
const headers = o.authorization ? { Authorization: o.authorization } : {}
let urlSent = false
let aborting = false

const upload = new tus.Upload(file, {
  endpoint: o.endpoint,
  uploadUrl: o.uploadUrl ?? null,
  chunkSize: o.chunkSize ?? Infinity,
  parallelUploads: o.parallelUploads ?? 1,
  uploadDataDuringCreation: o.uploadDataDuringCreation ?? false,
  retryDelays: o.retryDelays ?? [0, 1000, 3000, 5000],
  metadata: o.metadata ?? { filename: 'clip.mp4' },
  headers,
  async onBeforeRequest(req) {
    if (o.delayMs && req.getMethod() === 'PATCH') {
      await new Promise((resolve) => setTimeout(resolve, o.delayMs))
    }
  },
  onAfterResponse(req, res) {
    if (!urlSent && upload.url) {
      urlSent = true
      out('url', { url: upload.url })
    }
    const job = res.getHeader('Ringcast-Job-Id')
    if (job) out('job', { job, video: res.getHeader('Ringcast-Video-Id'), status: res.getStatus() })
  },
  onChunkComplete(_size, accepted, total) {
    out('progress', { offset: accepted, total })
    if (o.abortAfter && accepted >= o.abortAfter && !aborting) {
      aborting = true
      upload
        .abort(Boolean(o.terminate))
        .then(() => {
          out('aborted', { url: upload.url, offset: accepted })
          process.exit(0)
        })
        .catch((e) => {
          out('error', { message: String(e) })
          process.exit(1)
        })
    }
  },
  onSuccess() {
    out('success', { url: upload.url })
  },
  onError(e) {
    out('error', { message: String(e) })
    process.exitCode = 1
  },
})
upload.start()
