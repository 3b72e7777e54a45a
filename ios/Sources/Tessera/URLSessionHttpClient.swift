import Foundation

/// The core's `HttpClient` over `URLSession`: the system trust store, App Transport Security,
/// proxies and the app's own session configuration apply. Follows no redirect, honours the
/// connect timeout and the overall deadline, stops reading past the request's size cap, and hands
/// the body over decompressed (URLSession inflates gzip itself). Pass one to
/// `Tessera.setHttpClient(client:)` and `Till.open(...)`; see docs/adr/0015.
///
/// The core calls `send` on the thread running the sync, never the main thread, and waits for the
/// answer: this blocks that thread, not the main one.
public final class URLSessionHttpClient: HttpClient, @unchecked Sendable {
    private let session: URLSession
    private let delegate: Delegate

    public init(configuration: URLSessionConfiguration = .ephemeral) {
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.httpShouldSetCookies = false
        delegate = Delegate()
        session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: nil)
    }

    deinit {
        session.invalidateAndCancel()
    }

    public func send(request: HttpRequest) throws -> HttpResponse {
        guard let url = URL(string: request.url) else {
            throw HttpError.Offline(reason: "not a URL: \(request.url)")
        }
        var r = URLRequest(url: url)
        switch request.method {
        case .get: r.httpMethod = "GET"
        case .post: r.httpMethod = "POST"
        case .delete: r.httpMethod = "DELETE"
        }
        // URLRequest's timeout is the longest silence; the overall deadline is kept below.
        r.timeoutInterval = Double(max(request.connectTimeoutMs, 1)) / 1000
        for h in request.headers {
            r.setValue(h.value, forHTTPHeaderField: h.name)
        }
        r.httpBody = request.body

        let exchange = Exchange(cap: request.maxBodyBytes)
        let task = session.dataTask(with: r)
        delegate.register(task, exchange)
        task.resume()
        let deadline = DispatchTime.now() + .milliseconds(Int(clamping: request.timeoutMs))
        if exchange.done.wait(timeout: deadline) == .timedOut {
            task.cancel()
            delegate.forget(task)
            throw HttpError.Timeout
        }
        delegate.forget(task)
        return try exchange.result()
    }

    /// One request's answer, filled by the session's delegate queue.
    final class Exchange: @unchecked Sendable {
        let done = DispatchSemaphore(value: 0)
        let cap: UInt64
        var response: HTTPURLResponse?
        var body = Data()
        var failure: HttpError?

        init(cap: UInt64) { self.cap = cap }

        func result() throws -> HttpResponse {
            if let failure { throw failure }
            guard let response else { throw HttpError.Interrupted(reason: "no answer") }
            let headers = response.allHeaderFields.compactMap { key, value -> HttpHeader? in
                guard let name = key as? String else { return nil }
                return HttpHeader(name: name, value: "\(value)")
            }
            return HttpResponse(status: UInt16(clamping: response.statusCode), headers: headers, body: body)
        }
    }

    final class Delegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
        private let lock = NSLock()
        private var exchanges: [Int: Exchange] = [:]

        func register(_ task: URLSessionTask, _ exchange: Exchange) {
            lock.lock(); defer { lock.unlock() }
            exchanges[task.taskIdentifier] = exchange
        }

        func forget(_ task: URLSessionTask) {
            lock.lock(); defer { lock.unlock() }
            exchanges[task.taskIdentifier] = nil
        }

        private func exchange(_ task: URLSessionTask) -> Exchange? {
            lock.lock(); defer { lock.unlock() }
            return exchanges[task.taskIdentifier]
        }

        // No redirect is followed: the core sees the 3xx itself.
        func urlSession(_ session: URLSession, task: URLSessionTask,
                        willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest,
                        completionHandler: @escaping (URLRequest?) -> Void) {
            completionHandler(nil)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask,
                        didReceive response: URLResponse,
                        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
            exchange(dataTask)?.response = response as? HTTPURLResponse
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            guard let ex = exchange(dataTask) else { return }
            if UInt64(ex.body.count + data.count) > ex.cap {
                ex.failure = HttpError.TooLarge
                dataTask.cancel()
                return
            }
            ex.body.append(data)
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
            guard let ex = exchange(task) else { return }
            if ex.failure == nil, let error = error as? URLError {
                switch error.code {
                case .timedOut:
                    ex.failure = HttpError.Timeout
                case .networkConnectionLost where ex.response != nil,
                     .cannotDecodeContentData, .cannotDecodeRawData, .cannotParseResponse:
                    ex.failure = HttpError.Interrupted(reason: error.localizedDescription)
                default:
                    ex.failure = ex.response == nil
                        ? HttpError.Offline(reason: error.localizedDescription)
                        : HttpError.Interrupted(reason: error.localizedDescription)
                }
            } else if ex.failure == nil, let error {
                ex.failure = HttpError.Interrupted(reason: error.localizedDescription)
            }
            ex.done.signal()
        }
    }
}
