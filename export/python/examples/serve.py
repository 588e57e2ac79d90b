"""A tiny HTTP endpoint for a kdedge bundle, standard library only.

    python serve.py BUNDLE_DIR [PORT]
    curl -s localhost:8080/predict -d '{"texts": ["a gorgeous, witty film"]}'
    # pair tasks: {"texts": [...], "pairs": [...]}
"""

import json
import sys
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kdedge_runtime import Classifier


def make_handler(classifier: Classifier):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            if self.path != "/predict":
                return self._reply(404, {"error": "POST to /predict"})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                predictions = classifier.predict(body["texts"], body.get("pairs"))
            except KeyError:
                return self._reply(400, {"error": 'the body needs "texts": a string or a list of strings'})
            except (ValueError, TypeError) as e:  # bad JSON, wrong types, a pair for a single-sentence model
                return self._reply(400, {"error": str(e)})
            predictions = predictions if isinstance(predictions, list) else [predictions]
            self._reply(200, {"predictions": [asdict(p) for p in predictions]})

        def _reply(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: python serve.py BUNDLE_DIR [PORT]")
    port = int(sys.argv[2]) if len(sys.argv) == 3 else 8080
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(Classifier(sys.argv[1])))
    print(f"serving on http://127.0.0.1:{port}/predict", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
