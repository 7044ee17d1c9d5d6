// The page's side of the inference worker: requests as promises, progress and notices as
// callbacks, and a restart that abandons whatever the worker was doing (Cancel).
import { errorOf, Report, request } from './protocol.js';

/** Rejection reason of the requests a restart abandons. */
export const CANCELLED = 'cancelled';

export class Inference {
  /**
   * @param {{onProgress: (message: object) => void, onNotice: (text: string) => void,
   *   onCrash: (text: string) => void}} listeners
   */
  constructor(listeners) {
    this.listeners = listeners;
    this.nextId = 1;
    this.start();
  }

  start() {
    this.calls = new Map();
    this.worker = new Worker(new URL('./worker.js', import.meta.url), { name: 'sanet-inference' });
    this.worker.onmessage = ({ data }) => {
      if (data.type === Report.PROGRESS) return this.listeners.onProgress(data);
      if (data.type === Report.NOTICE) return this.listeners.onNotice(data.message);
      const pending = this.calls.get(data.id);
      this.calls.delete(data.id);
      if (data.ok) pending?.resolve(data);
      else pending?.reject(errorOf(data));
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.listeners.onCrash(event.message || 'unknown error');
    };
  }

  /** Sends request `type` (protocol.js Request) and resolves to its reply. */
  call(type, payload = {}, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage(request(id, type, payload), transfer);
    });
  }

  /** Ends the worker, and with it every tensor and run; pending requests reject as cancelled. */
  restart() {
    this.worker.terminate();
    for (const { reject } of this.calls.values()) {
      reject(Object.assign(new Error('Cancelled.'), { kind: CANCELLED }));
    }
    this.start();
  }
}
