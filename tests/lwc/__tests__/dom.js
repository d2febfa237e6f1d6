// Helpers for the components' tests: every shadow root under an element, the text of what a
// selector finds in them, and a wait for pending promises.

export function roots(element) {
    const found = [];
    const walk = (root) => {
        found.push(root);
        root.querySelectorAll('*').forEach((node) => {
            if (node.shadowRoot) {
                walk(node.shadowRoot);
            }
        });
    };
    walk(element.shadowRoot);
    return found;
}

export function all(element, selector) {
    return roots(element).flatMap((root) => Array.from(root.querySelectorAll(selector)));
}

export function one(element, selector) {
    const nodes = all(element, selector);
    if (nodes.length !== 1) {
        throw new Error(`${selector}: ${nodes.length} nodes`);
    }
    return nodes[0];
}

export function texts(element, selector) {
    return all(element, selector).map((node) => node.textContent.trim());
}

// Lets pending promises (Apex calls, re-renders) settle.
export async function settle() {
    for (let i = 0; i < 5; i++) {
        // eslint-disable-next-line no-await-in-loop
        await Promise.resolve();
    }
}

// What markup in a Case's fields or an answer must stay: text.
export const IMG = '<img src=x onerror=alert(1)>';
export const SCRIPT = '<script>alert(1)</script>';

// No element the markup could have made, anywhere in the component.
export function expectNoInjectedElements(element) {
    expect(all(element, 'img, script, iframe')).toEqual([]);
    all(element, 'a').forEach((a) => expect(a.getAttribute('href')).toMatch(/^https?:\/\//));
}

export function allText(element) {
    return roots(element)
        .map((root) => root.textContent)
        .join(' ');
}
